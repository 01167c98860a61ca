"""Security holds: a district admin stops one account until the hold is lifted

Revision ID: 0011_security_holds
Revises: 0010_app_opt_outs
"""
from alembic import op
import sqlalchemy as sa

revision = "0011_security_holds"
down_revision = "0010_app_opt_outs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("person", sa.Column("held_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("person", sa.Column("hold_reason", sa.String(length=200), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("person") as batch:
        batch.drop_column("hold_reason")
        batch.drop_column("held_at")
