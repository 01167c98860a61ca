"""Indexes for removals and the admin's pages: every foreign key, the events with an actor by kind,
an app's events

Every foreign key gets an index whose first column it is. Removing a row that others point at
(ON DELETE SET NULL or CASCADE) makes both SQLite and PostgreSQL look for those rows by the key;
without an index, each removed row read the whole table. A roster import removing a year's
graduates read every badge once per person for badge.issued_by_id (at 200,000 badges, 52 ms a
person on SQLite, holding the write lock, and 21 ms on PostgreSQL; 6 and 0.4 ms with these), and
app opt-outs, classroom devices and deletion requests likewise for who made them; removing a
classroom device read every badge (last_used_device_id), a class or school every grant.

Three of the audit table, for the admin's pages (portal.admin.shared):
- ix_audit_event_actor_kind_at, (kind, at) of the events that have an actor: the log of one kind
  (/admin/log?kind=launch) reads the latest events "by the district's people" along it. Sign-ins,
  launches and userinfo reads never have an actor and are most of the table: along
  ix_audit_event_kind_at that part read every one of them (3.75 million rows of 5 million).
- ix_audit_event_no_one_kind_at, (kind, at) of the events by no one about no one (a few): the
  same log's part "about no one". PostgreSQL, and SQLite with statistics, read those along
  person_id's index already; SQLite without (the portal gathers none) walked every event of the
  kind.
- ix_audit_event_app_at, (app_id, at): an app's latest releases (/admin/apps/<slug>) read the whole
  table for an app with few of them. It is also app_id's foreign key index.

Building them reads the audit table once each. The upgrade is one transaction (portal.migrate), in
which PostgreSQL cannot CREATE INDEX CONCURRENTLY: each build holds a SHARE lock on its table,
under which reads go on and writes wait (a sign-in's or launch's audit INSERT waits; it does not
fail). SQLite's upgrade holds the write lock throughout; a write waits 10 s for it, then fails.
The whole upgrade took 5 s on PostgreSQL and 14 to 20 s on SQLite at 5 million events and 200,000
badges (a shared 2-core machine). Run `portal db upgrade` before the new version serves, as
always; at that size on SQLite, with the old version stopped, or its sign-ins fail meanwhile.

Revision ID: 0023_foreign_key_and_log_indexes
Revises: 0022_app_removed_at
"""
from alembic import op
import sqlalchemy as sa

revision = "0023_foreign_key_and_log_indexes"
down_revision = "0022_app_removed_at"
branch_labels = None
depends_on = None

# (index, table, column): every foreign key that no index led with before.
FOREIGN_KEYS = (
    ("ix_school_district", "school", "district_id"),
    ("ix_app_grant_district", "app_grant", "district_id"),
    ("ix_app_grant_school", "app_grant", "school_id"),
    ("ix_app_grant_section", "app_grant", "section_id"),
    ("ix_app_opt_out_app", "app_opt_out", "app_id"),
    ("ix_app_opt_out_by", "app_opt_out", "by_id"),
    ("ix_kiosk_device_created_by", "kiosk_device", "created_by_id"),
    ("ix_badge_issued_by", "badge", "issued_by_id"),
    ("ix_badge_last_used_device", "badge", "last_used_device_id"),
    ("ix_deletion_request_app", "deletion_request", "app_id"),
    ("ix_deletion_request_asked_by", "deletion_request", "asked_by_id"),
    ("ix_deletion_request_done_by", "deletion_request", "done_by_id"),
)

HAS_ACTOR = sa.text("actor_id IS NOT NULL")
NO_ONE = sa.text("person_id IS NULL AND actor_id IS NULL")


def upgrade() -> None:
    for name, table, column in FOREIGN_KEYS:
        op.create_index(name, table, [column])
    op.create_index("ix_audit_event_actor_kind_at", "audit_event", ["kind", "at"],
                    sqlite_where=HAS_ACTOR, postgresql_where=HAS_ACTOR)
    op.create_index("ix_audit_event_no_one_kind_at", "audit_event", ["kind", "at"],
                    sqlite_where=NO_ONE, postgresql_where=NO_ONE)
    op.create_index("ix_audit_event_app_at", "audit_event", ["app_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_event_app_at", table_name="audit_event")
    op.drop_index("ix_audit_event_no_one_kind_at", table_name="audit_event")
    op.drop_index("ix_audit_event_actor_kind_at", table_name="audit_event")
    for name, table, _column in reversed(FOREIGN_KEYS):
        op.drop_index(name, table_name=table)
