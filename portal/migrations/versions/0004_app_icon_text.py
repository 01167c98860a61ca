"""App icons are stored in the database as data: URLs (longer than 2048 characters)

Revision ID: 0004_app_icon_text
Revises: 0003_badges
"""
from alembic import op
import sqlalchemy as sa

revision = "0004_app_icon_text"
down_revision = "0003_badges"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app", schema=None) as batch_op:
        batch_op.alter_column("icon", existing_type=sa.String(length=2048), type_=sa.Text(),
                              existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("app", schema=None) as batch_op:
        batch_op.alter_column("icon", existing_type=sa.Text(), type_=sa.String(length=2048),
                              existing_nullable=False)
