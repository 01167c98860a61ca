"""Deletion requests: a district asking an app's vendor to delete what the app received about a
student (the records of each release are audit "launch" and "userinfo" events)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base
from portal.models.apps import App
from portal.models.types import UTCDateTime
from portal.models.roster import Person


class DeletionRequest(Base):
    """One request to one app about one person, open until the vendor confirms the deletion.

    It outlives the person (removed from the roster) and the app (removed from the portal): the
    district must still be able to show what it asked and when. So it keeps the app's name and
    the subject the app knows the person by (a pairwise id, which names no one by itself), but no
    name, username or email of theirs: those are read from the person while the roster still holds
    them. (Of the staff who asked and recorded the answer it keeps "Name (username)".)
    """

    __tablename__ = "deletion_request"
    __table_args__ = (
        Index("ix_deletion_request_district_asked", "district_id", "asked_at"),
        Index("ix_deletion_request_person_app", "person_id", "app_id"),
        # The other foreign keys (every foreign key has an index: see Badge; migration 0023).
        Index("ix_deletion_request_app", "app_id"),
        Index("ix_deletion_request_asked_by", "asked_by_id"),
        Index("ix_deletion_request_done_by", "done_by_id"),
        # One open request per person and app, enforced by the database too: two admins (or a
        # double click) asking at the same moment both found none open (portal.admin.deletions).
        Index("uq_deletion_request_open", "person_id", "app_id", unique=True,
              sqlite_where=text("done_at IS NULL"), postgresql_where=text("done_at IS NULL")),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # None once the roster removes (or renames) the district: the request is kept all the same.
    district_id: Mapped[int | None] = mapped_column(ForeignKey("district.id", ondelete="SET NULL"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    app_id: Mapped[int | None] = mapped_column(ForeignKey("app.id", ondelete="SET NULL"))
    app_name: Mapped[str] = mapped_column(String(255))
    protocol: Mapped[str] = mapped_column(String(10))            # saml or oidc
    subject: Mapped[str] = mapped_column(String(255))             # the pairwise id the app was sent
    # Every field the release records say the app received, in catalogue order, and when.
    fields: Mapped[list] = mapped_column(JSON, default=list)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    asked_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    # "Name (username)" of who asked and who recorded the answer, as portal.audit.actor_name
    # writes it: named still once the roster removes them (the ids are then NULL).
    asked_by_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    done_by_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    # What the vendor answered (a ticket number, who confirmed): the admin's words, not the log's.
    done_note: Mapped[str] = mapped_column(String(500), default="")

    person: Mapped[Person | None] = relationship(foreign_keys=[person_id], viewonly=True)
    app: Mapped[App | None] = relationship(viewonly=True)
    asked_by: Mapped[Person | None] = relationship(foreign_keys=[asked_by_id], viewonly=True)
    done_by: Mapped[Person | None] = relationship(foreign_keys=[done_by_id], viewonly=True)

    @property
    def is_open(self) -> bool:
        return self.done_at is None
