"""Usernames stored composed (NFC), as the importer and sign-in now read them

Revision ID: 0015_composed_usernames
Revises: 0014_one_open_deletion_request
"""
import logging
import unicodedata

from alembic import op
import sqlalchemy as sa

revision = "0015_composed_usernames"
down_revision = "0014_one_open_deletion_request"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

_people = sa.table("person", sa.column("id", sa.Integer()), sa.column("username", sa.String()))


def compose_usernames(conn) -> list[str]:
    """Store each username composed. One that would then equal another person's stays as it is
    (neither account changes; the district renames one in its student information system and
    the next import settles it): return those."""
    rows = conn.execute(sa.select(_people.c.id, _people.c.username)).all()
    taken = {username for _, username in rows}
    left = []
    for person_id, username in rows:
        composed = unicodedata.normalize("NFC", username)
        if composed == username:
            continue
        if composed in taken:
            left.append(username)
            continue
        conn.execute(_people.update().where(_people.c.id == person_id).values(username=composed))
        taken.add(composed)
    return left


def upgrade() -> None:
    left = compose_usernames(op.get_bind())
    if left:
        log.warning("%d username(s) left decomposed: composed, each equals another person's "
                    "username; rename one of each pair in the student information system",
                    len(left))


def downgrade() -> None:
    pass  # the composed spelling is the same name
