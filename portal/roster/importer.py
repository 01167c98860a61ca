"""import_roster: parse -> diff -> apply, in one transaction. The CLI and the demo both use it."""
from __future__ import annotations

import gc
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, NamedTuple

import redis
from sqlalchemy.orm import Session

from portal.badges.sessions import end_badge_sessions
from portal.roster.apply import apply_plan
from portal.roster.diff import Plan, plan_import
from portal.roster.parse import read_bundle
from portal.roster.problems import RosterError
from portal.roster.state import State, load_state
from portal.roster.summary import ImportSummary
from portal.sessions import end_sessions_for

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
                  redis_client: redis.Redis | None = None) -> ImportSummary:
    """Import the OneRoster 1.1 CSV bundle at `path` (a folder or a .zip) and commit.

    Every row of every file is checked before anything is written; a bad bundle raises
    RosterError listing the problems, and the database is left as it was. Importing the same
    bundle twice changes nothing the second time, and writes nothing. People the import
    removes lose every session at once; people it disables, or who stop being students, lose
    their badges and badge sessions. Either needs Redis (`redis_client`, else the app's): when
    it cannot be reached, such an import is refused and nothing changes.
    """
    with _cyclic_gc_paused():
        summary, leaving = _import(db, path, progress, redis_client)
    if leaving:
        _sign_out_after_commit(db, _redis(redis_client), leaving)
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
    # Students who leave a school: a badge works only at its school, so its sessions end (the
    # badge itself stays, refused at sign-in, and works again if they come back).
    moved: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.removed or self.lost or self.moved)


def _leaving(plan: Plan, state: State) -> _Leaving:
    # id, role, ..., enabled; built only when someone changes (a district has many people)
    before = {row[0]: row for row in state.people.values()} if plan.people.updates else {}
    lost = [row["id"] for row in plan.people.updates
            if (not row["enabled"] or row["role"] != "student")
            and before[row["id"]][1] == "student" and before[row["id"]][-1]]
    moved = tuple(sorted({state.people[person][0] for person, _ in plan.memberships_removed
                    if person in state.people and state.people[person][1] == "student"}))
    return _Leaving(list(plan.people.deletes), lost, moved)


def _sign_out(client: redis.Redis, leaving: _Leaving) -> None:
    """End the sessions of people the import removes or turns away."""
    for person_id in leaving.removed:
        end_sessions_for(client, person_id)
    for person_id in [*leaving.lost, *leaving.moved]:
        end_badge_sessions(client, person_id)


def _sign_out_after_commit(db: Session, client: redis.Redis, leaving: _Leaving) -> None:
    # Again after the commit: a session started while the transaction ran would otherwise
    # outlive its person (on SQLite a new person can even take a removed person's id).
    from portal.badges.services import void_badges_for_people
    try:
        for person_id in leaving.removed:
            end_sessions_for(client, person_id)
        if leaving.lost:  # ends their badge sessions again, too
            void_badges_for_people(db, client, leaving.lost,
                                   reason="roster: disabled or not a student")
        for person_id in leaving.moved:
            end_badge_sessions(client, person_id)
    except redis.RedisError as e:
        # The roster is committed and every session older than the import has ended; only one
        # started during it may be left.
        log.warning("roster import: Redis went away after the commit (%s); sessions started "
                    "during the import by %d removed, disabled or moved people may remain",
                    type(e).__name__, len(leaving.removed) + len(leaving.lost) + len(leaving.moved))


def _import(db: Session, path: Path | str, progress: Progress | None,
            redis_client: redis.Redis | None):
    bundle = read_bundle(path, progress)
    try:
        if progress:
            progress("checking", 0, 1)
        conn = db.connection()
        state = load_state(conn)
        plan = plan_import(bundle, state)
        del bundle
        leaving = _leaving(plan, state)
        if leaving:
            _require_redis(_redis(redis_client).ping)
        if progress:
            progress("checking", 1, 1)
        if plan.writes:
            apply_plan(conn, plan, state, progress)
        if leaving:
            # Before the commit too: if Redis went away meanwhile, nothing is applied.
            _require_redis(lambda: _sign_out(_redis(redis_client), leaving))
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return plan.summary, leaving


def _require_redis(action: Callable[[], object]) -> None:
    try:
        action()
    except redis.RedisError:
        raise RosterError(["Redis (the session store) cannot be reached, and this import "
                           "removes, disables or moves people whose sessions must end at once; start "
                           "Redis and import again"]) from None
