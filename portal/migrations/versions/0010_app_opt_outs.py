"""App opt-outs: a person kept from one app whatever the grants say

Revision ID: 0010_app_opt_outs
Revises: 0009_deletion_requests
"""
from alembic import op
import sqlalchemy as sa

revision = "0010_app_opt_outs"
down_revision = "0009_deletion_requests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_opt_out",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"],
                                name=op.f("fk_app_opt_out_person_id_person"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["app_id"], ["app.id"],
                                name=op.f("fk_app_opt_out_app_id_app"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["by_id"], ["person.id"],
                                name=op.f("fk_app_opt_out_by_id_person"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("person_id", "app_id", name=op.f("pk_app_opt_out")),
    )


def downgrade() -> None:
    op.drop_table("app_opt_out")
