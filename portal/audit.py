"""The one way anything is logged about a person: audit events in the database."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Iterable

from sqlalchemy import delete, select

from portal.db import db
from portal.models import App, Event, Person

# Keys that must never reach an audit record, whatever a caller passes.
_FORBIDDEN = {"password", "token", "secret", "badge", "code", "image"}

# Built once: sign-ins and launches write one event per request. A Core INSERT of the table
# (not of the mapped class, which goes through the ORM's bulk path) costs a third as much.
_INSERT = Event.__table__.insert()


def actor_name(actor: Person | None) -> str | None:
    """How an event or a request names who did it, kept for when the roster removes them (the
    reference to them is then NULL): "Name (username)"."""
    return f"{actor.display_name} ({actor.username})" if actor is not None else None


def _checked(data: dict | None) -> dict:
    data = dict(data or {})
    leaked = _FORBIDDEN.intersection(k.lower() for k in data)
    if leaked:
        raise ValueError(f"audit data may not carry {sorted(leaked)}")
    return data


def record(kind: str, *, person: Person | None = None, actor: Person | None = None,
           app: App | None = None, data: dict | None = None, commit: bool = True) -> None:
    """Record one event about a person (who, what, which app, when)."""
    record_many(kind, [(person.id if person else None, data)], actor=actor, app=app, commit=commit)


def record_many(kind: str, about: Iterable[tuple[int | None, dict | None]], *, actor: Person | None = None,
                app: App | None = None, commit: bool = True) -> int:
    """Record one event of `kind` by `actor` for each (person id, data) of `about`, as record()
    does, in one INSERT of all the rows (an executemany): the work on a whole class or school
    (voiding its badges) writes one statement, not one a badge. Each data is checked as record()
    checks it, every one before anything is written. Returns how many were recorded."""
    at, by, name = datetime.now(timezone.utc), actor.id if actor else None, actor_name(actor)
    rows = [{"at": at, "kind": kind, "person_id": person_id, "actor_id": by, "actor_name": name,
             "app_id": app.id if app else None, "data": _checked(data)} for person_id, data in about]
    if rows:
        # A plain INSERT on the session's connection, in its transaction: neither the ORM's unit
        # of work nor its execute path (events, ORM compile), which cost more than the INSERT.
        db.session.connection().execute(_INSERT, rows)
    if commit:
        db.session.commit()
    return len(rows)


def grant_scope(grant) -> dict:
    """The ids of the district, school and class an app grant names (those it names), for the data
    of its app_granted and app_ungranted events. A grant made from the command line is by no one
    and about no one: these ids are how the audit log knows which district's log it belongs in
    (portal.admin.shared.audit_log), as the school_id and section_id of a device or a policy do."""
    return {key: value for key in ("district_id", "school_id", "section_id")
            if (value := getattr(grant, key)) is not None}


# The records of what was released to an app about a student: at each launch (SAML attributes,
# an ID token, a link's nothing) and when an app reads OpenID userinfo (once per access token and
# set of fields: portal.sso.oidc.server.release_userinfo). A school keeps the
# record of each disclosure as long as it keeps the student's records (FERPA, 34 CFR 99.32), so
# age alone never purges them; they go with the person when the roster removes them (the rows
# cascade).
RELEASE_KINDS = ("launch", "userinfo")
KEPT_KINDS = RELEASE_KINDS


# Events a purge deletes per statement, each batch committed on its own. In one statement a purge
# of a year's events (666,000 at 100,000 students) held SQLite's write lock for 20 seconds and
# more, and every sign-in and launch meanwhile failed to record its event ("database is locked"
# after BUSY_TIMEOUT_MS); between batches they go through. Tests lower it.
PURGE_BATCH = 5000


def purge_older_than(days: int, progress: Callable[[int], None] | None = None) -> int:
    """Delete events older than `days` days, except the release records; return how many went.

    In batches of PURGE_BATCH, oldest first, each committed: `progress` hears the number deleted
    so far after each. A purge stopped part-way (an error, ^C) has deleted whole batches of what it
    may delete and nothing else; run again, it deletes the rest."""
    cutoff = datetime.now(timezone.utc) - timedelta(days=days)
    purged = (Event.at < cutoff, Event.kind.not_in(KEPT_KINDS))
    gone = 0
    since = None
    while True:
        # From where the last batch ended (its events are gone): not along the release records,
        # never deleted, that every batch would otherwise walk again from the oldest.
        after = () if since is None else (Event.at >= since,)
        batch = db.session.execute(select(Event.id, Event.at).where(*purged, *after)
                                   .order_by(Event.at).limit(PURGE_BATCH)).all()
        if not batch:
            break
        # The rule again in the DELETE itself: nothing but what a purge may delete, whatever the ids.
        result = db.session.execute(delete(Event).where(Event.id.in_([row.id for row in batch]), *purged))
        db.session.commit()
        gone += result.rowcount or 0
        since = batch[-1].at
        if progress is not None:
            progress(gone)
        if len(batch) < PURGE_BATCH:
            break
    return gone
