"""Write a plan with SQLAlchemy Core: chunked executemany inserts and updates, chunked deletes.

No ORM objects per row: a district has hundreds of thousands of enrollments. New rows' ids are
read back by sourcedId after each table's inserts, so that the next table can point at them.
On PostgreSQL (psycopg) new rows go in by COPY on the same connection instead of INSERT.
"""
from __future__ import annotations

from typing import Callable

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from portal.roster.diff import Changes, Plan
from portal.roster.state import (
    State, district_t, enrollment_t, person_school_t, person_t, school_t, section_t,
)

# Rows per executemany batch and ids per IN list. SQLite allows 32766 variables a statement,
# PostgreSQL 65535; small batches also keep the progress bar moving.
CHUNK = 5000


class _Writer:
    def __init__(self, conn: Connection, total: int,
                 progress: Callable[[str, int, int], None] | None):
        self.conn = conn
        self.total = max(total, 1)
        self.done = 0
        self.progress = progress

    def _step(self, n: int) -> None:
        self.done += n
        if self.progress:
            self.progress("writing", min(self.done, self.total), self.total)

    def many(self, statement, rows: list[dict]) -> None:
        for i in range(0, len(rows), CHUNK):
            batch = rows[i:i + CHUNK]
            self.conn.execute(statement, batch)
            self._step(len(batch))

    def delete_ids(self, table: Table, ids: list[int]) -> None:
        for i in range(0, len(ids), CHUNK):
            batch = ids[i:i + CHUNK]
            self.conn.execute(delete(table).where(table.c.id.in_(batch)))
            self._step(len(batch))

    def ids(self, table: Table) -> dict[str, int]:
        return dict(self.conn.execute(select(table.c.sourced_id, table.c.id)).all())

    def write(self, table: Table, changes: Changes, refs: dict[str, dict[str, int]]) -> None:
        """Updates, then inserts; `refs` turns sourcedId fields (e.g. "school") into ids."""
        for rows in (changes.updates, changes.inserts):
            for row in rows:
                for name, ids in refs.items():
                    sid = row.pop(name)
                    row[f"{name}_id"] = ids[sid] if sid is not None else None
        if changes.updates:
            for row in changes.updates:
                row["b_id"] = row.pop("id")
            # The SET clause is every other key of the rows (they all have the same keys).
            self.many(update(table).where(table.c.id == bindparam("b_id")), changes.updates)
        if changes.inserts:
            self.insert(table, changes.inserts)

    def insert(self, table: Table, rows: list[dict]) -> None:
        if self.conn.dialect.name == "postgresql" and self.conn.dialect.driver == "psycopg":
            self._copy(table, rows)
        else:
            self.many(insert(table), rows)

    def _copy(self, table: Table, rows: list[dict]) -> None:
        # On PostgreSQL, COPY loads rows several times faster than executemany INSERTs (one
        # statement per row, however pipelined): half a million enrollments take seconds, not
        # a minute. It runs on the same connection, so inside the same transaction.
        quote = self.conn.dialect.identifier_preparer
        names = list(rows[0])
        # COPY skips the models' Python-side defaults (an INSERT would apply them): add them.
        defaults = {c.name: c.default.arg for c in table.columns
                    if c.name not in names and c.default is not None and c.default.is_scalar}
        tail = list(defaults.values())
        columns = ", ".join(quote.quote(n) for n in names + list(defaults))
        sql = f"COPY {quote.format_table(table)} ({columns}) FROM STDIN"
        with self.conn.connection.driver_connection.cursor() as cursor:
            for i in range(0, len(rows), CHUNK):
                batch = rows[i:i + CHUNK]
                with cursor.copy(sql) as copy:
                    for row in batch:
                        copy.write_row([row[n] for n in names] + tail)
                self._step(len(batch))


def _move_usernames_aside(w: _Writer, plan: Plan, state: State) -> None:
    """Let two people swap usernames in one import, and someone new take the username of one
    who leaves in it (removed last): park the old names that others now want."""
    updates, deletes = plan.people.updates, plan.people.deletes
    if not updates and not deletes:
        return
    wanted = {row["username"] for row in plan.people.inserts}
    wanted.update(row["username"] for row in updates)
    old = {row[0]: row[3] for row in state.people.values()}
    moving = [row["id"] for row in updates if old[row["id"]] != row["username"]] + deletes
    aside = [{"b_id": person_id, "username": f"\x01renaming {person_id}"} for person_id in moving
             if old[person_id] in wanted]
    if aside:
        w.many(update(person_t).where(person_t.c.id == bindparam("b_id")), aside)


def apply_plan(conn: Connection, plan: Plan, state: State,
               progress: Callable[[str, int, int], None] | None = None) -> None:
    """Make the database match the plan (inside the caller's transaction)."""
    w = _Writer(conn, plan.writes, progress)

    # The enrollments the plan removes first; people, classes, schools and districts last, once
    # what stays has moved off them: their removal cascades to what still points at them, and
    # an enrollment now naming a new teacher or class, or a class at a new school, must not go
    # with the old one (every other removal is explicit, so the counts say what went).
    w.delete_ids(enrollment_t, plan.enrollments.deletes)

    w.write(district_t, plan.districts, {})
    districts = w.ids(district_t) if plan.districts.inserts else state.ids("districts")
    w.write(school_t, plan.schools, {"district": districts})
    schools = w.ids(school_t) if plan.schools.inserts else state.ids("schools")
    w.write(section_t, plan.sections, {"school": schools})
    sections = w.ids(section_t) if plan.sections.inserts else state.ids("sections")

    if plan.rekeys:
        # Their apps' subjects are made from the sourcedId they had first (access.pairwise_subject):
        # the same student to every app after a new sourcedId as before it.
        w.many(update(person_t).where(person_t.c.id == bindparam("b_id")).values(
                   subject_seed=func.coalesce(person_t.c.subject_seed, person_t.c.sourced_id)),
               [{"b_id": person_id, "sourced_id": sid} for person_id, sid in plan.rekeys.items()])
    _move_usernames_aside(w, plan, state)
    w.write(person_t, plan.people, {"district": districts})
    people = w.ids(person_t) if plan.people.inserts else state.ids("people")

    if plan.memberships_removed:
        w.many(delete(person_school_t).where(person_school_t.c.person_id == bindparam("p"),
                                             person_school_t.c.school_id == bindparam("s")),
               [{"p": people[p], "s": schools[s]} for p, s in plan.memberships_removed])
    if plan.memberships_added:
        w.insert(person_school_t, [{"person_id": people[p], "school_id": schools[s]}
                                   for p, s in plan.memberships_added])

    w.write(enrollment_t, plan.enrollments, {"person": people, "section": sections})

    # Children first.
    w.delete_ids(person_t, plan.people.deletes)
    w.delete_ids(section_t, plan.sections.deletes)
    w.delete_ids(school_t, plan.schools.deletes)
    w.delete_ids(district_t, plan.districts.deletes)
