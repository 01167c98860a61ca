"""Deletion request ids are never reused on SQLite: 0013 had copied the table without AUTOINCREMENT

0009 made deletion_request with AUTOINCREMENT, but 0013 copied it (to change a foreign key) without
it. SQLite then hands a new request the largest id in use plus one, and 0014 deletes the requests it
merges: their ids came back as new requests' ids, so a vendor quoting "request 2" pointed at another
request. The table is copied again with AUTOINCREMENT (every row, index and key kept), and its
counter starts past every request id the audit log names (a merged one named there is gone from
the table). A database that 0013 already copied with it (a new one) is left as it is. PostgreSQL's
sequences never reuse ids: nothing to change there.

Revision ID: 0016_deletion_request_ids
Revises: 0015_composed_usernames
"""
from alembic import op

from portal.migrate import sqlite_autoincrement

revision = "0016_deletion_request_ids"
down_revision = "0015_composed_usernames"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sqlite_autoincrement(("deletion_request",), True)
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("INSERT INTO sqlite_sequence (name, seq) SELECT 'deletion_request', 0 "
               "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'deletion_request')")
    op.execute("UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT max(CAST(json_extract("
               "data, '$.request') AS INTEGER)) FROM audit_event WHERE kind LIKE 'deletion%'), 0)) "
               "WHERE name = 'deletion_request'")


def downgrade() -> None:
    pass    # 0015's schema asks for AUTOINCREMENT too (0009): the copy keeps it
