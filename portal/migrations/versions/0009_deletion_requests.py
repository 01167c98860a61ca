"""Deletion requests: what a district asked an app's vendor to delete about a student

Revision ID: 0009_deletion_requests
Revises: 0008_app_device_badge_ids
"""
from alembic import op
import sqlalchemy as sa

revision = "0009_deletion_requests"
down_revision = "0008_app_device_badge_ids"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deletion_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("app_id", sa.Integer(), nullable=True),
        sa.Column("app_name", sa.String(length=255), nullable=False),
        sa.Column("protocol", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("asked_by_id", sa.Integer(), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by_id", sa.Integer(), nullable=True),
        sa.Column("done_note", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(["district_id"], ["district.id"],
                                name=op.f("fk_deletion_request_district_id_district"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"],
                                name=op.f("fk_deletion_request_person_id_person"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["app_id"], ["app.id"],
                                name=op.f("fk_deletion_request_app_id_app"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["asked_by_id"], ["person.id"],
                                name=op.f("fk_deletion_request_asked_by_id_person"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["done_by_id"], ["person.id"],
                                name=op.f("fk_deletion_request_done_by_id_person"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deletion_request")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_deletion_request_district_asked", "deletion_request", ["district_id", "asked_at"])
    op.create_index("ix_deletion_request_person_app", "deletion_request", ["person_id", "app_id"])


def downgrade() -> None:
    op.drop_index("ix_deletion_request_person_app", table_name="deletion_request")
    op.drop_index("ix_deletion_request_district_asked", table_name="deletion_request")
    op.drop_table("deletion_request")
