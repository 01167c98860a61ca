"""One active badge of each kind per student and school (was: per student)

A student at two schools needs a card at each (a kiosk accepts only its own school's), and each
school's staff decide its badges; with one active badge per student and kind, issuing one school's
card voided the other's. Upgrading only loosens the index: every existing row satisfies it.

Downgrading tightens it again: of a student's active badges of one kind, the newest stays and the
others are voided (as the older code did when it issued one).

Revision ID: 0019_one_active_badge_per_school
Revises: 0018_actor_names
"""
import logging
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

revision = "0019_one_active_badge_per_school"
down_revision = "0018_actor_names"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

ACTIVE = sa.text("revoked_at IS NULL")
_badges = sa.table("badge", sa.column("id", sa.Integer()), sa.column("person_id", sa.Integer()),
                   sa.column("kind", sa.String()), sa.column("revoked_at", sa.DateTime(timezone=True)),
                   sa.column("revoked_reason", sa.String()))


def upgrade() -> None:
    op.drop_index("uq_badge_active", table_name="badge", sqlite_where=ACTIVE, postgresql_where=ACTIVE)
    op.create_index("uq_badge_active", "badge", ["person_id", "kind", "school_id"], unique=True,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)


def downgrade() -> None:
    conn = op.get_bind()
    newest = sa.select(sa.func.max(_badges.c.id)).where(_badges.c.revoked_at.is_(None)).group_by(
        _badges.c.person_id, _badges.c.kind)
    voided = conn.execute(
        sa.update(_badges).where(_badges.c.revoked_at.is_(None), _badges.c.id.not_in(newest))
        .values(revoked_at=datetime.now(timezone.utc), revoked_reason="one per student (downgrade)"))
    if voided.rowcount:
        log.warning("%d badge(s) voided: a student had active badges of one kind at two schools, and "
                    "the older schema allows one", voided.rowcount)
    op.drop_index("uq_badge_active", table_name="badge", sqlite_where=ACTIVE, postgresql_where=ACTIVE)
    op.create_index("uq_badge_active", "badge", ["person_id", "kind"], unique=True,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)
