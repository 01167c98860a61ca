"""Badges, kiosk devices, badge policies and second factors

Revision ID: 0003_badges
Revises: 0002_app_client_id
"""
from alembic import op
import sqlalchemy as sa

revision = "0003_badges"
down_revision = "0002_app_client_id"
branch_labels = None
depends_on = None

ACTIVE = sa.text("revoked_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "badge_factor",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("pin_hash", sa.String(length=255), nullable=True),
        sa.Column("picture_hash", sa.String(length=255), nullable=True),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"],
                                name=op.f("fk_badge_factor_person_id_person"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_badge_factor")),
    )
    op.create_table(
        "badge_policy",
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("grades", sa.String(length=255), nullable=False),
        sa.Column("second_factor_grades", sa.String(length=255), nullable=False),
        sa.Column("factor", sa.Enum("pin", "picture", name="badge_factor_kind", native_enum=False,
                                    length=10), nullable=False),
        sa.Column("allow_browser_scanner", sa.Boolean(), nullable=False),
        sa.Column("expires_on", sa.String(length=10), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["school_id"], ["school.id"],
                                name=op.f("fk_badge_policy_school_id_school"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("school_id", name=op.f("pk_badge_policy")),
    )
    op.create_table(
        "kiosk_device",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("browser_key_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["person.id"],
                                name=op.f("fk_kiosk_device_created_by_id_person"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["school_id"], ["school.id"],
                                name=op.f("fk_kiosk_device_school_id_school"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kiosk_device")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_kiosk_device_secret_hash")),
    )
    with op.batch_alter_table("kiosk_device", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kiosk_device_school_id"), ["school_id"], unique=False)

    op.create_table(
        "badge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.Enum("permanent", "temporary", name="badge_kind", native_enum=False,
                                  length=10), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by_id", sa.Integer(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=64), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_device_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["issued_by_id"], ["person.id"],
                                name=op.f("fk_badge_issued_by_id_person"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["last_used_device_id"], ["kiosk_device.id"],
                                name=op.f("fk_badge_last_used_device_id_kiosk_device"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"],
                                name=op.f("fk_badge_person_id_person"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["school_id"], ["school.id"],
                                name=op.f("fk_badge_school_id_school"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_badge")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_badge_token_hash")),
    )
    with op.batch_alter_table("badge", schema=None) as batch_op:
        batch_op.create_index("ix_badge_person", ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_badge_school_id"), ["school_id"], unique=False)
        # One active badge of each kind per student.
        batch_op.create_index("uq_badge_active", ["person_id", "kind"], unique=True,
                              sqlite_where=ACTIVE, postgresql_where=ACTIVE)


def downgrade() -> None:
    with op.batch_alter_table("badge", schema=None) as batch_op:
        batch_op.drop_index("uq_badge_active", sqlite_where=ACTIVE, postgresql_where=ACTIVE)
        batch_op.drop_index(batch_op.f("ix_badge_school_id"))
        batch_op.drop_index("ix_badge_person")
    op.drop_table("badge")
    with op.batch_alter_table("kiosk_device", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kiosk_device_school_id"))
    op.drop_table("kiosk_device")
    op.drop_table("badge_policy")
    op.drop_table("badge_factor")
