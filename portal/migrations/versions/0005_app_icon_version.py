"""Apps keep a short fingerprint of their icon, so the tiles page need not load the icons

Revision ID: 0005_app_icon_version
Revises: 0004_app_icon_text
"""
import hashlib

from alembic import op
import sqlalchemy as sa

revision = "0005_app_icon_version"
down_revision = "0004_app_icon_text"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app", schema=None) as batch_op:
        batch_op.add_column(sa.Column("icon_version", sa.String(length=16), nullable=False,
                                      server_default=""))
    app = sa.table("app", sa.column("id", sa.Integer), sa.column("icon", sa.Text),
                   sa.column("icon_version", sa.String))
    conn = op.get_bind()
    for app_id, icon in conn.execute(sa.select(app.c.id, app.c.icon).where(app.c.icon != "")):
        # The same fingerprint as portal.admin.icons.icon_version (kept here as it was).
        version = hashlib.blake2s(icon.encode("ascii"), digest_size=6).hexdigest()
        conn.execute(app.update().where(app.c.id == app_id).values(icon_version=version))


def downgrade() -> None:
    with op.batch_alter_table("app", schema=None) as batch_op:
        batch_op.drop_column("icon_version")
