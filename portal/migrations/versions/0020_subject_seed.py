"""A person's pairwise subjects outlive a new sourcedId: person.subject_seed

Every app's subject for a student is a keyed hash of the app and the student's sourcedId
(portal.access.pairwise_subject). Since 0018's import re-keys a student the student information
system gives a new sourcedId (the same person, kept), the subject would have changed with it:
every app would have seen a new student, and a deletion letter would have named the student by a
subject the app never received. A re-keyed person keeps what their subjects were made from in
subject_seed (NULL: the sourcedId, as for everyone never re-keyed).

Revision ID: 0020_subject_seed
Revises: 0019_one_active_badge_per_school
"""
from alembic import op
import sqlalchemy as sa

revision = "0020_subject_seed"
down_revision = "0019_one_active_badge_per_school"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("person", sa.Column("subject_seed", sa.String(255), nullable=True))


def downgrade() -> None:
    # DROP COLUMN in place (SQLite 3.35 and newer; PostgreSQL): no copy of the person table.
    # A re-keyed person's apps then see a new subject, as they did before this revision.
    op.execute("ALTER TABLE person DROP COLUMN subject_seed")
