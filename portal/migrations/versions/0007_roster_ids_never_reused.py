"""Roster ids are never reused on SQLite: a removed person's id must not come back as a new one's

SQLite gives a new row the largest id in use plus one, so removing the newest student and
importing another handed the new student the removed one's id, and with it whatever still named
that id outside the database: an OIDC access token (userinfo would answer with the new student's
fields), a session, a rate-limit count, a badge hand-off. AUTOINCREMENT never hands an id out
twice. PostgreSQL's sequences never do either: nothing to change there.

Revision ID: 0007_roster_ids_never_reused
Revises: 0006_badge_factor_wrong_tries
"""
from portal.migrate import sqlite_autoincrement

revision = "0007_roster_ids_never_reused"
down_revision = "0006_badge_factor_wrong_tries"
branch_labels = None
depends_on = None

TABLES = ("district", "school", "section", "person")


def upgrade() -> None:
    sqlite_autoincrement(TABLES, True)


def downgrade() -> None:
    sqlite_autoincrement(TABLES, False)
