"""An app can be removed and its records keep its name: app.removed_at

`portal apps remove` retires an app rather than deleting its row: the release records (audit
"launch" and "userinfo" events) and deletion requests name the app by its row, and a school
keeps them as long as the student's records (FERPA, 34 CFR 99.32). A removed app (removed_at
set) has no grants, is on no tile and in no list of apps, and nothing signs in to it; NULL: an
app in use, as every app was before this revision.

Revision ID: 0022_app_removed_at
Revises: 0021_removed_actor_index
"""
from alembic import op
import sqlalchemy as sa

revision = "0022_app_removed_at"
down_revision = "0021_removed_actor_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("app", sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # DROP COLUMN in place (SQLite 3.35 and newer; PostgreSQL). A removed app is then listed again,
    # with no grants: on no tile, and nobody may sign in to it, until someone grants it.
    op.execute("ALTER TABLE app DROP COLUMN removed_at")
