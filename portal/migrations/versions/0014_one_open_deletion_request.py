"""One open deletion request per person and app; the audit log read along indexes

Revision ID: 0014_one_open_deletion_request
Revises: 0013_requests_outlive_districts
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

revision = "0014_one_open_deletion_request"
down_revision = "0013_requests_outlive_districts"
branch_labels = None
depends_on = None

OPEN = sa.text("done_at IS NULL")

_requests = sa.table(
    "deletion_request", sa.column("id", sa.Integer()), sa.column("person_id", sa.Integer()),
    sa.column("app_id", sa.Integer()), sa.column("fields", sa.JSON()),
    sa.column("first_at", sa.DateTime(timezone=True)), sa.column("last_at", sa.DateTime(timezone=True)),
    sa.column("asked_at", sa.DateTime(timezone=True)), sa.column("done_at", sa.DateTime(timezone=True)))
_events = sa.table(
    "audit_event", sa.column("at", sa.DateTime(timezone=True)), sa.column("kind", sa.String()),
    sa.column("actor_id", sa.Integer()), sa.column("person_id", sa.Integer()), sa.column("app_id", sa.Integer()),
    sa.column("data", sa.JSON()))


def merge_open_duplicates(conn) -> None:
    """Two admins asking at the same moment could make two open requests for one person and app
    (the same subject, the same records). The oldest stays, open, and now covers what each of
    them covered (every field, the first and the last release); the others go. None is marked
    done instead: the page would then say the vendor confirmed a deletion it never confirmed.
    Each one merged leaves an audit event about the person, naming it and the request it went
    into (a vendor may quote it), beside the "deletion_requested" event that named its asker."""
    rows = conn.execute(
        sa.select(_requests).where(_requests.c.done_at.is_(None), _requests.c.person_id.is_not(None),
                                   _requests.c.app_id.is_not(None))
        .order_by(_requests.c.person_id, _requests.c.app_id, _requests.c.asked_at, _requests.c.id)).all()
    kept = None
    for row in rows:
        if kept is None or (row.person_id, row.app_id) != (kept["person_id"], kept["app_id"]):
            kept = {**row._mapping, "fields": list(row.fields or [])}
            continue
        kept["fields"] += [f for f in row.fields or [] if f not in kept["fields"]]
        kept["first_at"], kept["last_at"] = min(kept["first_at"], row.first_at), max(kept["last_at"], row.last_at)
        conn.execute(sa.update(_requests).where(_requests.c.id == kept["id"]).values(
            fields=kept["fields"], first_at=kept["first_at"], last_at=kept["last_at"]))
        conn.execute(sa.delete(_requests).where(_requests.c.id == row.id))
        conn.execute(sa.insert(_events).values(
            at=datetime.now(timezone.utc), kind="deletion_merged", actor_id=None, person_id=row.person_id,
            app_id=row.app_id, data={"request": row.id, "into": kept["id"]}))


def upgrade() -> None:
    merge_open_duplicates(op.get_bind())
    op.create_index("uq_deletion_request_open", "deletion_request", ["person_id", "app_id"], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)
    op.create_index("ix_audit_event_actor_at", "audit_event", ["actor_id", "at"])
    op.create_index("ix_audit_event_at", "audit_event", ["at"])


def downgrade() -> None:
    # The requests merged stay merged: the one kept covers what they covered.
    op.drop_index("ix_audit_event_at", table_name="audit_event")
    op.drop_index("ix_audit_event_actor_at", table_name="audit_event")
    op.drop_index("uq_deletion_request_open", table_name="deletion_request",
                  sqlite_where=OPEN, postgresql_where=OPEN)
