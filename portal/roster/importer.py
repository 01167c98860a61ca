"""import_roster: parse -> diff -> apply, in one transaction. The CLI and the demo both use it."""
from __future__ import annotations

import gc
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, NamedTuple

import redis
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from portal.badges.sessions import end_badge_sessions, end_sessions_of_revoked, mark_badges_revoked
from portal.db import BUSY_TIMEOUT_MS, refresh_statistics
from portal.badges import plural
from portal.badges.permissions import TEACHING_ROLES, at_school
from portal.models import Badge, DeletionRequest, Enrollment, Person, Role, Section
from portal.redis_store import REFUSED_PASSWORD, refused_password
from portal.roster.apply import apply_plan
from portal.roster.diff import Plan, plan_import
from portal.roster.parse import read_bundle
from portal.roster.problems import (
    REDIS_AWAY, REDIS_PASSWORD, REMOVES_ASKED, REMOVES_HELD, REMOVES_MANY, RosterError,
)
from portal.roster.record import Attempt, record_imported, record_refused
from portal.roster.state import State, load_state
from portal.roster.summary import ImportSummary, some_names
from portal.sessions import end_sessions_for, end_sessions_where

Progress = Callable[[str, int, int], None]  # (stage, done, total)

log = logging.getLogger(__name__)


@contextmanager
def _cyclic_gc_paused():
    # An import makes millions of small tuples and no reference cycles; the cyclic collector
    # would rescan them all again and again as they pile up (a third of the parse time).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def import_roster(db: Session, path: Path | str, progress: Progress | None = None,
                  redis_client: redis.Redis | None = None, *,
                  allow_removals: bool = False) -> ImportSummary:
    """Import the OneRoster 1.1 CSV bundle at `path` (a folder or a .zip) and commit.

    Every row of every file is checked before anything is written; a bad bundle raises
    RosterError listing the problems, and the database is left as it was, but for the audit
    event that records the refusal (after the rollback, in a commit of its own). An accepted
    import's event is committed with it (portal.roster.record: counts, never names). Importing
    the same bundle twice changes nothing the second time, and writes nothing but that event,
    so the district admin's home page tells a night's import from none. People the import
    removes lose every session at once; people it disables, or who stop being students, lose
    their badges and badge sessions. Either needs Redis (`redis_client`, else the app's): when
    it cannot be reached, such an import is refused and nothing changes.

    An import that would remove more than a quarter of the people (at least MASS_REMOVAL of
    them) is refused unless `allow_removals`: a cut-off export looks just like that, and what
    goes with a removed person (their release records) cannot come back. So is one that would
    remove anyone on security hold or with an open deletion request. A person whose sourcedId
    the bundle drops while a new row has their username and role is kept under the new one
    (diff._rekeys), with their hold, opt-outs, badges and records.
    """
    attempt = Attempt(path, allow_removals=allow_removals)
    try:
        with _cyclic_gc_paused():
            summary, leaving, revoked = _import(db, path, attempt, progress, redis_client)
    except RosterError as e:
        record_refused(db, attempt, e)
        raise
    if leaving:
        _sign_out_after_commit(_redis(redis_client), leaving, revoked)
    return summary


def _redis(client: redis.Redis | None) -> redis.Redis:
    """The given client, else the app's: looked up only when an import signs someone out."""
    if client is not None:
        return client
    from flask import current_app
    return current_app.extensions["redis"]


class _Leaving(NamedTuple):
    """People whose sessions the import ends: by person id."""
    removed: list[int]
    lost: list[int]  # were enabled students; now disabled or not students: badges go
    # Students who leave a school, or whose school closes: person id -> their badges of that
    # school. A badge works only at its school, so the sessions begun with it end (the badge
    # stays, refused at sign-in, and works again if they come back); others stay.
    moved: dict = {}

    def __bool__(self) -> bool:
        return bool(self.removed or self.lost or self.moved)


def _leaving(conn, plan: Plan, state: State) -> _Leaving:
    # id, role, ..., enabled; built only when someone changes (a district has many people)
    before = {row[0]: row for row in state.people.values()} if plan.people.updates else {}
    lost = [row["id"] for row in plan.people.updates
            if (not row["enabled"] or row["role"] != "student")
            and before[row["id"]][1] == "student" and before[row["id"]][-1]]
    return _Leaving(list(plan.people.deletes), lost, _badges_left_behind(conn, plan, state))


def _badges_left_behind(conn, plan: Plan, state: State) -> dict[int, frozenset[int]]:
    """Students' badges of the schools they leave, or that close (read before the import
    removes a closed school's badges with it)."""
    left: dict[str, set[str]] = {}
    for person, school in plan.memberships_removed:
        left.setdefault(person, set()).add(school)
    closing = set(plan.schools.deletes)
    if closing:
        closed = {sid for sid, row in state.schools.items() if row[0] in closing}
        for person, schools in state.person_schools.items():
            if schools & closed:
                left.setdefault(person, set()).update(schools & closed)
    schools_left = {state.people[person][0]: {state.schools[s][0] for s in schools}
                    for person, schools in left.items()
                    if person in state.people and state.people[person][1] == "student"}
    ids, badges = sorted(schools_left), {}
    for start in range(0, len(ids), 500):
        for badge_id, person_id, school_id in conn.execute(
                select(Badge.id, Badge.person_id, Badge.school_id)
                .where(Badge.person_id.in_(ids[start:start + 500]))):
            if school_id in schools_left[person_id]:
                badges.setdefault(person_id, set()).add(badge_id)
    return {person_id: frozenset(found) for person_id, found in badges.items()}


def _end_left_behind(client: redis.Redis, moved: dict) -> None:
    for person_id, badge_ids in moved.items():
        end_sessions_where(client, person_id, lambda data, ids=badge_ids: data.get("badge_id") in ids)


def _sign_out(client: redis.Redis, leaving: _Leaving) -> None:
    """End the sessions of people the import removes or turns away."""
    for person_id in leaving.removed:
        end_sessions_for(client, person_id)
    for person_id in leaving.lost:
        end_badge_sessions(client, person_id)
    _end_left_behind(client, leaving.moved)


def _sign_out_after_commit(client: redis.Redis, leaving: _Leaving,
                           revoked: list[tuple[int, int]]) -> None:
    # Again after the commit: a session started while the transaction ran would otherwise
    # outlive its person (on SQLite a new person can even take a removed person's id).
    try:
        for person_id in leaving.removed:
            end_sessions_for(client, person_id)
        # The badges the import revoked (committed with it); their owners' badge sessions again
        end_sessions_of_revoked(client, revoked)
        for person_id in leaving.lost:
            end_badge_sessions(client, person_id)
        # Marked first, as revoked badges are: a badge sign-in at the school a student left,
        # checked just before the commit and saved just after this, ends itself (found by review).
        mark_badges_revoked(client, [badge_id for ids in leaving.moved.values() for badge_id in ids])
        _end_left_behind(client, leaving.moved)
    except redis.RedisError as e:
        # The roster is committed and every session older than the import has ended; only one
        # started during it may be left.
        log.warning("roster import: Redis went away after the commit (%s); sessions started "
                    "during the import by %d removed, disabled or moved people may remain",
                    type(e).__name__, len(leaving.removed) + len(leaving.lost) + len(leaving.moved))


# Fewer removals than this always pass (a small school's year-end); more pass only when they
# are at most a quarter of the people there.
MASS_REMOVAL = 50




def _check_removals(conn, plan: Plan, state: State) -> None:
    """Refuse an import that removes most people, or anyone a district admin is keeping an eye
    on: on security hold (an import never lifts a hold), or with a deletion request the app's
    vendor has not confirmed (removed, the letter names them by the app's own id alone)."""
    problems, reasons = [], []
    removed, there = len(plan.people.deletes), len(state.people)
    if removed >= MASS_REMOVAL and removed * 4 > there:
        problems.append(
            f"this import would remove {removed:,} of the {there:,} people in the portal "
            f"({100 * removed // there}%), with their records of what apps received; an export "
            "that lost its rows looks like this. Check users.csv; if the removals are right, "
            "import again with --allow-removals")
        reasons.append(REMOVES_MANY)
    held, asked = _watched(conn, plan.people.deletes)
    if held:
        problems.append(
            f"this import would remove {_named(held, 'on security hold')}. An import never lifts a "
            "hold: lift it first (`portal users unhold USERNAME`, or Lift the hold on their page), "
            f"or if {_these(held)} really left, import again with --allow-removals (their hold, "
            "opt-outs and records go with them)")
        reasons.append(REMOVES_HELD)
    if asked:
        what = "with a deletion request their app's vendor has not confirmed"
        problems.append(
            f"this import would remove {_named(asked, what)}. "
            "Once removed, a person is named in their request only by the app's own id for them: "
            "record the vendor's "
            f"answer first (`portal deletions done ID`), or if {_these(asked)} really left, import "
            "again with --allow-removals")
        reasons.append(REMOVES_ASKED)
    if problems:
        raise RosterError(problems, *reasons)


def _watched(conn, ids: list[int]) -> tuple[list[str], list[str]]:
    """Of these people, the usernames of those on hold and of those with an open deletion
    request, each sorted."""
    held, asked = set(), set()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        held.update(conn.execute(select(Person.username).where(
            Person.id.in_(chunk), Person.held_at.is_not(None))).scalars())
        asked.update(conn.execute(select(Person.username).join(
            DeletionRequest, DeletionRequest.person_id == Person.id).where(
            Person.id.in_(chunk), DeletionRequest.done_at.is_(None))).scalars())
    return sorted(held), sorted(asked)


def _named(usernames: list[str], what: str) -> str:
    """"3 people on hold: a, b, c", up to NAMED of them by name, the others counted."""
    return f"{plural(len(usernames), 'person', 'people')} {what}: {some_names(usernames)}"


def _these(usernames: list[str]) -> str:
    return "this person" if len(usernames) == 1 else "these people"


def _import(db: Session, path: Path | str, attempt: Attempt, progress: Progress | None,
            redis_client: redis.Redis | None):
    from portal.badges.services import revoke_badges_for_people
    bundle = read_bundle(path, progress, attempt.read)
    revoked = []
    try:
        if progress:
            progress("checking", 0, 1)
        conn = db.connection()
        _one_import_at_a_time(conn)
        state = load_state(conn)
        plan = plan_import(bundle, state)
        del bundle
        if not attempt.allow_removals and plan.people.deletes:
            _check_removals(conn, plan, state)
        leaving = _leaving(conn, plan, state)
        if leaving:
            _require_redis(_redis(redis_client).ping)
        if progress:
            progress("checking", 1, 1)
        if plan.writes:
            apply_plan(conn, plan, state, progress)
        if leaving.lost:
            # In the import's transaction: a roster committed without them would leave the
            # badges of students it disabled working, and importing it again changes nothing.
            revoked = revoke_badges_for_people(db, leaving.lost, "roster: disabled or not a student")
        if leaving:
            # Before the commit too: if Redis went away meanwhile, nothing is applied.
            _require_redis(lambda: _sign_out(_redis(redis_client), leaving))
        record_imported(db, attempt, plan.summary)
        db.commit()
        # Only for the summary: read after the commit, not while the write lock is held.
        plan.summary.teachers_elsewhere, plan.summary.students_elsewhere = \
            _in_classes_elsewhere(db.connection())
        db.rollback()
    except BaseException:
        db.rollback()
        raise
    if plan.writes:
        refresh_statistics(db.get_bind())
    return plan.summary, leaving, revoked




def _in_classes_elsewhere(conn) -> tuple[list[str], list[str]]:
    """Usernames of the enabled teachers, and of the enabled students, enrolled as such in a
    class at a school their own row does not name: the class is not theirs, nor they its, until
    it does (portal.badges.permissions.at_school). One pass over the enrollments."""
    rows = conn.execute(
        select(Person.username, Person.role).distinct()
        .join(Enrollment, Enrollment.person_id == Person.id)
        .join(Section, Section.id == Enrollment.section_id)
        .where(Person.enabled.is_(True),
               or_(and_(Person.role == Role.teacher, Enrollment.role.in_(TEACHING_ROLES)),
                   and_(Person.role == Role.student, Enrollment.role == "student")),
               ~at_school(Person.id, Section.school_id))
        .order_by(Person.username))
    teachers, students = [], []
    for username, role in rows:
        (teachers if role is Role.teacher else students).append(username)
    return teachers, students


def _one_import_at_a_time(conn) -> None:
    """Take the roster's write lock before reading what is there: a second import (a nightly
    run overlapping a manual one) then waits, and plans from what the first wrote, instead of
    applying a plan made from rows that changed under it."""
    if conn.dialect.name == "postgresql":
        # Keyed by this portal's person table: portals in other schemas of the database
        # import beside it.
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock('person'::regclass::oid::int, 1)")
    elif conn.dialect.name == "sqlite":
        # A write takes SQLite's one write lock for the transaction; this one changes nothing.
        # An import may take minutes: wait that long for another (then as usual again).
        conn.exec_driver_sql("PRAGMA busy_timeout=900000")
        try:
            conn.exec_driver_sql("UPDATE district SET id = id WHERE 0")
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def _require_redis(action: Callable[[], object]) -> None:
    try:
        action()
    except redis.RedisError as e:
        if refused_password(e):
            raise RosterError([f"{REFUSED_PASSWORD}, and this import removes, disables or moves "
                               "people whose sessions must end at once: set the password Redis "
                               "expects there and import again"], REDIS_PASSWORD) from None
        raise RosterError(["Redis (the session store) cannot be reached, and this import "
                           "removes, disables or moves people whose sessions must end at once; start "
                           "Redis and import again"], REDIS_AWAY) from None
