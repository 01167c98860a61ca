"""Who did it, after the roster removes them: events and deletion requests keep the actor's name

An audit event's actor_id, and a deletion request's asked_by_id and done_by_id, are set to NULL
when the roster removes that person: the log then credited a departed teacher's or admin's
actions to "the command line or the roster". Each now keeps "Name (username)" as it was when
written (portal.audit.record, portal.admin.deletions). Rows already there take the name of
whoever is still on the roster; one whose actor is gone already has none to take.

Revision ID: 0018_actor_names
Revises: 0017_one_grant_per_group
"""
from alembic import op
import sqlalchemy as sa

revision = "0018_actor_names"
down_revision = "0017_one_grant_per_group"
branch_labels = None
depends_on = None

# SQLite copies deletion_request to drop a column: the copy keeps AUTOINCREMENT (0009, 0016).
_KEEP_IDS = {"sqlite_autoincrement": True}

# portal.audit.actor_name in SQL: "Preferred-or-given Family (username)".
_NAME = ("trim(coalesce(nullif(p.preferred_name, ''), p.given_name) || ' ' || p.family_name) "
         "|| ' (' || p.username || ')'")


def _named(column: str, table: str, by: str) -> str:
    return (f"UPDATE {table} SET {column} = (SELECT {_NAME} FROM person p WHERE p.id = {table}.{by}) "
            f"WHERE {by} IS NOT NULL")


def upgrade() -> None:
    op.add_column("audit_event", sa.Column("actor_name", sa.Text(), nullable=True))
    op.add_column("deletion_request", sa.Column("asked_by_name", sa.Text(), nullable=True))
    op.add_column("deletion_request", sa.Column("done_by_name", sa.Text(), nullable=True))
    op.execute(_named("actor_name", "audit_event", "actor_id"))
    op.execute(_named("asked_by_name", "deletion_request", "asked_by_id"))
    op.execute(_named("done_by_name", "deletion_request", "done_by_id"))


def downgrade() -> None:
    with op.batch_alter_table("deletion_request", table_kwargs=_KEEP_IDS) as batch:
        batch.drop_column("done_by_name")
        batch.drop_column("asked_by_name")
    with op.batch_alter_table("audit_event") as batch:
        batch.drop_column("actor_name")
