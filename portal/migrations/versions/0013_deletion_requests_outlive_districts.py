"""Deletion requests outlive their district: a roster removing (or renaming) a district keeps them

Revision ID: 0013_requests_outlive_districts
Revises: 0012_scanner_networks
"""
from alembic import op
import sqlalchemy as sa

revision = "0013_requests_outlive_districts"
down_revision = "0012_scanner_networks"
branch_labels = None
depends_on = None

_FK = "fk_deletion_request_district_id_district"
# SQLite copies the table to change the key: the copy keeps AUTOINCREMENT (0009), so that a
# request's id, once used, is never another's (0016 gives it back to a table copied without).
_KEEP_IDS = {"sqlite_autoincrement": True}


def upgrade() -> None:
    with op.batch_alter_table("deletion_request", table_kwargs=_KEEP_IDS) as batch:
        batch.drop_constraint(_FK, type_="foreignkey")
        batch.alter_column("district_id", existing_type=sa.Integer(), nullable=True)
        batch.create_foreign_key(_FK, "district", ["district_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    # A request whose district is gone has nowhere to go back to: it is kept out of the copy
    # only when downgrading, which a district does to undo this very step.
    op.execute("DELETE FROM deletion_request WHERE district_id IS NULL")
    with op.batch_alter_table("deletion_request", table_kwargs=_KEEP_IDS) as batch:
        batch.drop_constraint(_FK, type_="foreignkey")
        batch.alter_column("district_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(_FK, "district", ["district_id"], ["id"], ondelete="CASCADE")
