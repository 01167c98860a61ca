"""Scanner networks: a school may limit the in-browser badge scanner to its own networks

Revision ID: 0012_scanner_networks
Revises: 0011_security_holds
"""
from alembic import op
import sqlalchemy as sa

revision = "0012_scanner_networks"
down_revision = "0011_security_holds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("badge_policy", sa.Column("scanner_networks", sa.String(length=2000),
                                            nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("badge_policy") as batch:
        batch.drop_column("scanner_networks")
