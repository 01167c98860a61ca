"""An app's identifier in its protocol (SAML entityID or OIDC client_id)

Revision ID: 0002_app_client_id
Revises: 0001_initial
"""
from alembic import op
import sqlalchemy as sa

revision = "0002_app_client_id"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client_id", sa.String(length=1024), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_app_client_id"), ["client_id"])


def downgrade() -> None:
    with op.batch_alter_table("app", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_app_client_id"), type_="unique")
        batch_op.drop_column("client_id")
