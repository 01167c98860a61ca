"""import_roster: parse -> diff -> apply, in one transaction. The CLI and the demo both use it."""
from __future__ import annotations

import gc
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import redis
from sqlalchemy.orm import Session

from portal.roster.apply import apply_plan
from portal.roster.diff import plan_import
from portal.roster.parse import read_bundle
from portal.roster.state import load_state
from portal.roster.summary import ImportSummary

Progress = Callable[[str, int, int], None]  # (stage, done, total)


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
    disables, or who stop being students, lose their badges (and, given `redis_client`,
    their badge sessions at once); people it removes lose theirs with their rows.
    """
    with _cyclic_gc_paused():
        summary, plan = _import(db, path, progress)
    lost = [row["b_id"] for row in plan.people.updates
            if not row["enabled"] or row["role"] != "student"]
    if lost:
        from flask import current_app
        from portal.badges.services import void_badges_for_people
        client = redis_client or current_app.extensions["redis"]
        void_badges_for_people(db, client, lost, reason="roster: disabled or not a student")
    return summary


def _import(db: Session, path: Path | str, progress: Progress | None):
    bundle = read_bundle(path, progress)
    try:
        if progress:
            progress("checking", 0, 1)
        conn = db.connection()
        state = load_state(conn)
        plan = plan_import(bundle, state)
        del bundle
        if progress:
            progress("checking", 1, 1)
        if plan.writes:
            apply_plan(conn, plan, state, progress)
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return plan.summary, plan
