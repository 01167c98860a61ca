"""Audit events: the one record of what the portal did about a person."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base
from portal.models.types import UTCDateTime


# An event whose actor the roster removed since: it kept their name, its reference is NULL.
REMOVED_ACTOR = "actor_id IS NULL AND actor_name IS NOT NULL"
# An event by someone on the roster.
HAS_ACTOR = "actor_id IS NOT NULL"
# An event by no one and about no one (a grant from the command line, an app's settings).
NO_ONE = "person_id IS NULL AND actor_id IS NULL"


class Event(Base):
    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(64))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    # "Name (username)" of the actor when it was written: who did it, once the roster removes
    # them (actor_id is then NULL). None: no actor, or written before migration 0018.
    actor_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    app_id: Mapped[int | None] = mapped_column(ForeignKey("app.id", ondelete="SET NULL"))
    data: Mapped[dict] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_audit_event_person_at", "person_id", "at"),
        Index("ix_audit_event_kind_at", "kind", "at"),
        # The admin's log reads the latest events by a district's people, and the latest about
        # no one, newest first (portal.admin.shared.audit_log): along these, not a sort of all.
        Index("ix_audit_event_actor_at", "actor_id", "at"),
        Index("ix_audit_event_at", "at"),
        # The log of one kind, its part "by the district's people": the events of that kind that
        # have an actor, newest first. Sign-ins, launches and userinfo reads, most of the table,
        # never have one, and ix_audit_event_kind_at walked all of them (migration 0023).
        Index("ix_audit_event_actor_kind_at", "kind", "at",
              sqlite_where=text(HAS_ACTOR), postgresql_where=text(HAS_ACTOR)),
        # Its part "about no one", likewise: a few events, where SQLite without statistics (the
        # portal gathers none) walked every event of the kind along ix_audit_event_kind_at.
        Index("ix_audit_event_no_one_kind_at", "kind", "at",
              sqlite_where=text(NO_ONE), postgresql_where=text(NO_ONE)),
        # An app's latest releases (portal.admin.shared.releases_to_app), newest first: an app
        # with few of them read every event of the table; and app_id's foreign key (0023).
        Index("ix_audit_event_app_at", "app_id", "at"),
        # What a staff member did before the roster removed them, found by their username in
        # the kept name (portal.admin.shared.audit_log): the events of removed people only.
        Index("ix_audit_event_removed_actor", "actor_name", "at",
              sqlite_where=text(REMOVED_ACTOR), postgresql_where=text(REMOVED_ACTOR)),
    )
