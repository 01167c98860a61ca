"""Deletion requests: asking an app's vendor to delete what the app received about a student.

The portal cannot reach into an app's database. What it can do is what a district's data privacy
agreement with the vendor needs: say exactly which records to delete (the identifiers the app was
sent, which fields, between which dates, from the release records), keep the request until the
vendor confirms, and record both in the audit log. An app only ever received a pairwise subject
and the fields released to it, so the subject is how the vendor finds the student: that is the
one identifier a request keeps after the roster drops the student.

Asking also ends what the app holds from the portal about the student at that moment, so that
nothing it got before the request keeps reading their data: an OpenID app's codes and access
tokens for them stop working and, if it listens, it is told to end their sessions there
(back-channel logout, as an opt-out does). A SAML app was sent everything in the assertion at
each launch and reads nothing afterwards, so there is nothing of it to end; it still hears when
the student signs out, as usual. Asking does not stop future launches: the student may still be
granted the app. A release dated after what a request covers is shown beside the request
(released_since), with the way to stop the sharing (an opt-out).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Iterator

import redis
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from portal import audit
from portal.access import FIELDS, IDENTIFYING, identifier_hash, pairwise_subject
from portal.admin.services import AdminError, one_line
from portal.admin.shared import AppSummary, _field_list, releases_about
from portal.audit import RELEASE_KINDS
from portal.local_time import local
from portal.models import App, AppKind, DeletionRequest, Event, Person

log = logging.getLogger(__name__)

MAX_NOTE = 500
# Requests a page shows (/admin/deletions, and an app's page), newest first; "Older requests" goes on.
PAGE_SIZE = 100
# Requests `portal deletions list` reads at a time, and the release records of as many (person,
# app) pairs it reads in one statement.
BATCH = 500
# The identifying fields in the words of the letter's notes ("an earlier ...", "the ... you received").
WORDS = {"username": "portal username", "email": "email address", "student_number": "student number"}


def received(db: Session, person: Person, app: App) -> AppSummary | None:
    """What `app` received about `person` by the release records (fields, first and last), or
    None if nothing: the person page's summary of that app."""
    summaries, _ = releases_about(db, person, limit=0)
    return next((s for s in summaries if s.app is not None and s.app.id == app.id), None)


def open_request(db: Session, person: Person, app: App) -> DeletionRequest | None:
    return db.scalar(select(DeletionRequest).where(
        DeletionRequest.person_id == person.id, DeletionRequest.app_id == app.id,
        DeletionRequest.done_at.is_(None)).order_by(DeletionRequest.id.desc()).limit(1))


def ask_deletion(db: Session, client: redis.Redis, person: Person, app: App, *, actor: Person | None,
                 pairwise_key: str, now: datetime) -> tuple[DeletionRequest, bool]:
    """Ask `app`'s vendor to delete what it received about `person`: (the request, True if new).

    A request still open for the same person and app is the one returned, brought up to date
    with any release since (the letter then covers everything received so far).

    What the app holds from the portal about the person now ends with it (an OpenID app's codes
    and tokens, through `client`, Redis): when Redis cannot be reached nothing is asked, so that
    a request on record always means nothing from before it still reads the student's data.
    """
    if app.kind == AppKind.link:
        raise AdminError(f"{app.name} is a link: the portal sends it nothing, so there is nothing "
                         "to ask it to delete")
    got = received(db, person, app)
    if got is None:
        raise AdminError(f"{app.name} has received nothing about {person.display_name}")
    request = open_request(db, person, app)
    created = request is None
    if created:
        request = DeletionRequest(district_id=person.district_id, person_id=person.id, app_id=app.id,
                                  app_name=app.name, protocol=app.kind.value,
                                  subject=pairwise_subject(pairwise_key, person, app),
                                  asked_at=now, asked_by_id=actor.id if actor else None,
                                  asked_by_name=audit.actor_name(actor), done_note="")
        db.add(request)
    request.fields, request.first_at, request.last_at = got.fields, got.first_at, got.last_at
    names = app.name, person.display_name
    try:
        db.flush()
    except IntegrityError:
        # Asked at the same moment (a double click, two admins): both found none open, and the
        # unique index kept the other's. That one is the request; this one was never made.
        db.rollback()
        request = open_request(db, person, app)
        if request is None:     # not that: the person or the app went at the same moment
            raise AdminError(f"{names[0]} or {names[1]} changed while asking; nothing was asked: "
                             "try again") from None
        created = False
        request.fields, request.first_at, request.last_at = got.fields, got.first_at, got.last_at
        db.flush()
    # Asked again while open: the letter is brought up to date and the app's tokens end again;
    # the log says who did so and when, as it does for the first asking.
    audit.record("deletion_requested" if created else "deletion_asked_again", person=person, actor=actor,
                 app=app, data={"request": request.id, "fields": got.fields}, commit=False)
    try:
        _revoke(client, person, app)
    except redis.RedisError:
        db.rollback()
        raise AdminError(f"the session store cannot be reached, so what {names[0]} holds from the "
                         f"portal about {names[1]} cannot be ended: nothing was asked; try again in "
                         "a minute") from None
    db.commit()
    _tell_app(client, person, app)
    return request, created


def _revoke(client: redis.Redis, person: Person, app: App) -> None:
    """Revoke an OpenID app's codes and access tokens for the person (a SAML app holds none)."""
    if app.kind is AppKind.oidc and app.client_id:
        from portal.sso.oidc.store import revoke_grants
        revoke_grants(client, person.id, app.client_id)


def _tell_app(client: redis.Redis, person: Person, app: App) -> None:
    """Tell an OpenID app that listens to end the sessions the person's portal sessions started
    there (back-channel logout). The request stands whatever happens here: a failure is logged."""
    if app.kind is not AppKind.oidc or not app.client_id:
        return
    from portal.sso.oidc.backchannel import log_out_of_app
    try:
        log_out_of_app(client, person.id, app.client_id)
    except Exception as e:  # noqa: BLE001  the request is made; the app is not told now
        log.warning("telling %s to end a student's sessions failed: %s", app.slug, type(e).__name__)


def confirm_deletion(db: Session, request: DeletionRequest, *, actor: Person | None, note: str,
                     now: datetime) -> DeletionRequest:
    """Record that the vendor confirmed the deletion (with the admin's note of their answer)."""
    if not request.is_open:
        raise _already_done(request)
    note = one_line(note, "note", MAX_NOTE)
    # Only while still open, in the same statement: two admins confirming at the same moment both
    # found it open, and the second overwrote the first's note and was recorded again.
    done = db.execute(update(DeletionRequest).where(DeletionRequest.id == request.id,
                                                    DeletionRequest.done_at.is_(None))
                      .values(done_at=now, done_by_id=actor.id if actor else None,
                              done_by_name=audit.actor_name(actor), done_note=note))
    if done.rowcount != 1:
        db.rollback()
        db.refresh(request)
        raise _already_done(request)
    audit.record("deletion_confirmed", person=request.person, actor=actor, app=request.app,
                 data={"request": request.id}, commit=False)
    db.commit()
    return request


@dataclass(frozen=True)
class SentSince:
    """What the release records say a request's app received about its person after the request:
    how many times, and the first and the last."""
    times: int
    first_at: datetime
    last_at: datetime


def released_since(db: Session, requests: Iterable[DeletionRequest]) -> dict[int, SentSince]:
    """By request id, the releases to its app about its person dated after the request was asked
    and after the last its letter covers (asked again while open, the letter covers up to then):
    what neither the letter nor the vendor's confirmation covers. Requests without any are left
    out, as those whose person or app is gone. One statement for them all."""
    ids = [r.id for r in requests if r.person_id is not None and r.app_id is not None]
    if not ids:
        return {}
    rows = db.execute(
        select(DeletionRequest.id, func.count(Event.id), func.min(Event.at), func.max(Event.at))
        .join(Event, and_(Event.person_id == DeletionRequest.person_id, Event.app_id == DeletionRequest.app_id))
        .where(DeletionRequest.id.in_(ids), Event.kind.in_(RELEASE_KINDS),
               Event.at > DeletionRequest.asked_at, Event.at > DeletionRequest.last_at)
        .group_by(DeletionRequest.id))
    return {request_id: SentSince(times, first, last) for request_id, times, first, last in rows if times}


def _already_done(request: DeletionRequest) -> AdminError:
    return AdminError(f"this request was already marked done on {local(request.done_at):%b %-d, %Y}")


def find_request(db: Session, district_id: int | None, request_id: int) -> DeletionRequest | None:
    """A request of the district by id (None for another district's: the same as none)."""
    return db.scalar(select(DeletionRequest).where(DeletionRequest.id == request_id,
                                                   DeletionRequest.district_id == district_id))


def _of_district(district_id: int | None, *, person: Person | None = None, app: App | None = None,
                 open_only: bool = False):
    query = select(DeletionRequest).where(DeletionRequest.district_id == district_id)
    if person is not None:
        query = query.where(DeletionRequest.person_id == person.id)
    if app is not None:
        query = query.where(DeletionRequest.app_id == app.id)
    if open_only:
        query = query.where(DeletionRequest.done_at.is_(None))
    return query


# The person and the app each request names, read with it (lists show the person's name, and the
# letter the app's settings): not one statement per request.
_WITH_NAMES = (joinedload(DeletionRequest.person), joinedload(DeletionRequest.app))


def requests_of(db: Session, district_id: int | None, *, person: Person | None = None,
                app: App | None = None, open_only: bool = False, limit: int = 500) -> list[DeletionRequest]:
    """The district's requests, open ones first, newest first."""
    query = _of_district(district_id, person=person, app=app, open_only=open_only)
    return list(db.scalars(query.order_by(DeletionRequest.done_at.is_not(None), DeletionRequest.asked_at.desc(),
                                          DeletionRequest.id.desc()).limit(limit)))


@dataclass(frozen=True)
class RequestPage:
    requests: list[DeletionRequest]     # newest first, at most PAGE_SIZE
    more: bool                          # older ones follow (ask again with before=the last one)
    waiting: int                        # how many of all (of the app's, when given) are open
    since: dict[int, SentSince]         # by request id: releases neither its letter nor its answer covers


def requests_page(db: Session, district_id: int | None, *, app: App | None = None, open_only: bool = False,
                  before: DeletionRequest | None = None, size: int = PAGE_SIZE) -> RequestPage:
    """A page of the district's requests (of `app`, open ones only), newest first by (asked_at,
    id): those older than `before`, or the newest. Each with its person and app, and how many are
    open (the page says so and links to them, wherever in the list they are)."""
    query = _of_district(district_id, app=app, open_only=open_only)
    if before is not None:
        query = query.where(or_(DeletionRequest.asked_at < before.asked_at,
                                and_(DeletionRequest.asked_at == before.asked_at, DeletionRequest.id < before.id)))
    found = list(db.scalars(query.options(*_WITH_NAMES)
                            .order_by(DeletionRequest.asked_at.desc(), DeletionRequest.id.desc()).limit(size + 1)))
    waiting = db.scalar(_of_district(district_id, app=app, open_only=True)
                        .with_only_columns(func.count()).order_by(None))
    shown = found[:size]
    return RequestPage(shown, len(found) > size, waiting or 0, released_since(db, shown))


def every_request(db: Session, *, open_only: bool = False) -> Iterator[list[DeletionRequest]]:
    """Every request, by district (by id, then those whose district the roster removed), open
    ones first, newest first: BATCH at a time, each with its person and app."""
    query = select(DeletionRequest).options(*_WITH_NAMES)
    if open_only:
        query = query.where(DeletionRequest.done_at.is_(None))
    query = query.order_by(DeletionRequest.district_id.is_(None), DeletionRequest.district_id,
                           DeletionRequest.done_at.is_not(None), DeletionRequest.asked_at.desc(),
                           DeletionRequest.id.desc())
    yield from db.scalars(query.execution_options(yield_per=BATCH)).partitions()


Received = tuple[dict[str, set[str]], set[str]]


def received_ids(db: Session, pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], Received]:
    """For each (person id, app id) pair, what the app's release records about the person say of
    its identifying values: for each field, the keyed hashes of the values it received; and the
    fields some record released without saying which value (records made before the portal kept
    the hashes). A few rows a pair: the distinct field lists and values of its records, not each
    launch; one statement for up to BATCH people."""
    wanted = set(pairs)
    found: dict[tuple[int, int], Received] = {
        pair: ({name: set() for name in IDENTIFYING}, set()) for pair in wanted}
    people = sorted({person_id for person_id, _ in wanted})
    apps = sorted({app_id for _, app_id in wanted})
    for start in range(0, len(people), BATCH):
        rows = db.execute(select(Event.person_id, Event.app_id, Event.data["fields"].as_string(),
                                 Event.data["ids"].as_string())
                          .where(Event.kind.in_(RELEASE_KINDS), Event.person_id.in_(people[start:start + BATCH]),
                                 Event.app_id.in_(apps)).distinct())
        for person_id, app_id, fields_text, ids_text in rows:
            if (person_id, app_id) in found:
                _note_received(found[(person_id, app_id)], fields_text, ids_text)
    return found


def _note_received(into: Received, fields_text, ids_text) -> None:
    seen, unknown = into
    try:
        ids = json.loads(ids_text) if isinstance(ids_text, str) else None
    except ValueError:
        ids = None
    ids, fields = ids if isinstance(ids, dict) else {}, _field_list(fields_text)
    for name in IDENTIFYING:
        if name not in fields:
            continue
        if isinstance(ids.get(name), str):
            seen[name].add(ids[name])
        else:
            unknown.add(name)


def wants_received(request: DeletionRequest) -> tuple[int, int] | None:
    """The (person id, app id) whose release records identifiers() reads for this request, or
    None when it reads none (the person or the app is gone, or no identifying field went)."""
    if request.person is None or request.app is None or not any(name in request.fields for name in IDENTIFYING):
        return None
    return request.person.id, request.app.id


def identifiers(db: Session, request: DeletionRequest, *, pairwise_key: str,
                ids_read: dict[tuple[int, int], Received] | None = None) -> list[tuple[str, str, str]]:
    """How the vendor finds the student, as (what, value, a note in words): the subject always;
    each identifying field the app received (and the SAML NameID among them), while the roster
    still holds the student (the request keeps no name, username or email of its own).

    The roster may have changed such a value since: one the app was never sent is not given to
    it here. The value now is shown when its keyed hash is among those the app's release records
    kept; else the note says it changed and the subject identifies the student. Records made
    before the hashes were kept cannot tell: then the value now is shown, and said to be now's.

    `ids_read`: what received_ids() read for many requests (a list's), this one's among them;
    else it is read here."""
    found = [("subject (the id the portal sent this app, different for every app)", request.subject, "")]
    person, app = request.person, request.app
    if person is None:
        return found
    wanted = [name for name in IDENTIFYING if name in request.fields]
    if not wanted:
        return found
    if app is None:
        seen, unknown = {}, set()
    else:
        pair = (person.id, app.id)
        seen, unknown = (ids_read if ids_read is not None and pair in ids_read else received_ids(db, [pair]))[pair]
    shown = {"username": person.username, "email": person.email or "",
             "student_number": person.student_number or ""}
    nameid = (app.settings or {}).get("nameid", "subject") if app is not None and app.kind == AppKind.saml else ""
    for name in wanted:
        label = f"{FIELDS[name]}, also the SAML NameID" if name == nameid else FIELDS[name]
        now = shown[name]
        received = seen.get(name, set())
        digest = identifier_hash(pairwise_key, name, now) if now else None
        if digest in received:
            note = (f"you may also hold an earlier {WORDS[name]} of this student's, not shown here"
                    if len(received) > 1 else "")
            found.append((label, now, note))
        elif name in unknown and now and not received:
            found.append((label, now, "the student's current one: the district's older records do not "
                                      "say which one you received"))
        else:
            since = ("has changed since, and you were never sent the new one" if now
                     else "is no longer in the district's records")
            found.append((label, "", f"not shown: the {WORDS[name]} you received {since}; the subject "
                                     "above identifies the student"))
    return found
