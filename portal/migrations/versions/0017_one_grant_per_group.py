"""One app grant per group: duplicates merged, then a unique index

Two admins granting an app to the same group at the same moment both found no such grant and both
stored one; removing "the" grant then left the app granted. The index is over the group as
portal.admin.services._same_grant reads it: NULLs equal (coalesce), and the district counted only
for a grant naming no school or class (a school or class names its district; --district --school
once stored both). Of each group granted twice the oldest grant stays and the others go: they
granted the same group the same app, so nothing else is lost (the audit log's app_granted events
name the group, not the grant).

Revision ID: 0017_one_grant_per_group
Revises: 0016_deletion_request_ids
"""
import logging

from alembic import op
import sqlalchemy as sa

revision = "0017_one_grant_per_group"
down_revision = "0016_deletion_request_ids"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

GROUP = ("app_id",
         "coalesce(CASE WHEN school_id IS NULL AND section_id IS NULL THEN district_id END, 0)",
         "coalesce(school_id, 0)", "coalesce(section_id, 0)", "coalesce(grade, '')", "coalesce(role, '')")

_grants = sa.table("app_grant", sa.column("id", sa.Integer()))


def merge_duplicate_grants(conn) -> int:
    """Delete every grant but the oldest (the smallest id) of each group; return how many went."""
    group = ", ".join(GROUP)
    rows = conn.execute(sa.text(f"SELECT id, {group} FROM app_grant ORDER BY id")).all()
    seen, extra = set(), []
    for grant_id, *key in rows:
        if tuple(key) in seen:
            extra.append(grant_id)
        seen.add(tuple(key))
    if extra:
        conn.execute(sa.delete(_grants).where(_grants.c.id.in_(extra)))
    return len(extra)


def upgrade() -> None:
    merged = merge_duplicate_grants(op.get_bind())
    if merged:
        log.warning("%d app grant(s) removed: each granted its app to a group another grant "
                    "already covered", merged)
    op.create_index("uq_app_grant_group", "app_grant", [sa.text(e) if "(" in e else e for e in GROUP],
                    unique=True)


def downgrade() -> None:
    # The grants merged stay merged: the one kept grants what they granted.
    op.drop_index("uq_app_grant_group", table_name="app_grant")
