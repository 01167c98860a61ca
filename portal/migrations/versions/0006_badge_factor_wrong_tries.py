"""Second factors count wrong tries in a row, so slow guessing still locks to teacher help

Revision ID: 0006_badge_factor_wrong_tries
Revises: 0005_app_icon_version
"""
from alembic import op
import sqlalchemy as sa

revision = "0006_badge_factor_wrong_tries"
down_revision = "0005_app_icon_version"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("badge_factor", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wrong_tries", sa.Integer(), nullable=False,
                                      server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("badge_factor", schema=None) as batch_op:
        batch_op.drop_column("wrong_tries")
