"""App, kiosk device and badge ids are never reused on SQLite either

As 0007 did for the roster: SQLite hands a new row the largest id in use plus one, so the newest
app, device or badge, once deleted, gave its id to the next one made. An app's id goes into its
pairwise subjects: an app registered after the newest was deleted would have received the same
subjects for the same students, the very join pairwise subjects exist to prevent. Device and badge
ids are named in audit events and in Redis (a device's current sign-in, a hand-off), which must
not come to mean another device or badge. PostgreSQL's sequences never reuse ids.

Revision ID: 0008_app_device_badge_ids
Revises: 0007_roster_ids_never_reused
"""
from portal.migrate import sqlite_autoincrement

revision = "0008_app_device_badge_ids"
down_revision = "0007_roster_ids_never_reused"
branch_labels = None
depends_on = None

TABLES = ("app", "kiosk_device", "badge")


def upgrade() -> None:
    sqlite_autoincrement(TABLES, True)


def downgrade() -> None:
    sqlite_autoincrement(TABLES, False)
