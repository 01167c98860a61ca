"""The audit log finds what a removed staff member did: an index of the events of removed people

The admin's audit log is filtered by username. A teacher or admin the roster removed has no
person row any more: their events keep "Name (username)" in actor_name (0018) with actor_id NULL,
and the log looks for the username there. This partial index holds only those events (a small
part of the table), so the search reads it, not every event of the district.

Revision ID: 0021_removed_actor_index
Revises: 0020_subject_seed
"""
from alembic import op
import sqlalchemy as sa

revision = "0021_removed_actor_index"
down_revision = "0020_subject_seed"
branch_labels = None
depends_on = None

REMOVED = sa.text("actor_id IS NULL AND actor_name IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_audit_event_removed_actor", "audit_event", ["actor_name", "at"],
                    sqlite_where=REMOVED, postgresql_where=REMOVED)


def downgrade() -> None:
    op.drop_index("ix_audit_event_removed_actor", table_name="audit_event")
