"""Deletion requests: asking an app's vendor to delete what the app received about a student.

The portal cannot reach into an app's database. What it can do is what a district's data privacy
agreement with the vendor needs: say exactly which records to delete (the identifiers the app was
sent, which fields, between which dates, from the release records), keep the request until the
vendor confirms, and record both in the audit log. An app only ever received a pairwise subject
and the fields released to it, so the subject is how the vendor finds the student: that is the
one identifier a request keeps after the roster drops the student.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import audit
from portal.access import FIELDS, pairwise_subject
from portal.admin.services import AdminError, one_line
from portal.admin.shared import AppSummary, releases_about
from portal.models import App, AppKind, DeletionRequest, Person

# Released fields by which an app can also find the student in its own records.
IDENTIFYING = ("username", "email", "student_number")
MAX_NOTE = 500


def received(db: Session, person: Person, app: App) -> AppSummary | None:
    """What `app` received about `person` by the release records (fields, first and last), or
    None if nothing: the person page's summary of that app."""
    summaries, _ = releases_about(db, person, limit=0)
    return next((s for s in summaries if s.app is not None and s.app.id == app.id), None)


def open_request(db: Session, person: Person, app: App) -> DeletionRequest | None:
    return db.scalar(select(DeletionRequest).where(
        DeletionRequest.person_id == person.id, DeletionRequest.app_id == app.id,
        DeletionRequest.done_at.is_(None)).order_by(DeletionRequest.id.desc()).limit(1))


def ask_deletion(db: Session, person: Person, app: App, *, actor: Person | None, pairwise_key: str,
                 now: datetime) -> tuple[DeletionRequest, bool]:
    """Ask `app`'s vendor to delete what it received about `person`: (the request, True if new).

    A request still open for the same person and app is the one returned, brought up to date
    with any release since (the letter then covers everything received so far).
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
    if created:
        audit.record("deletion_requested", person=person, actor=actor, app=app,
                     data={"request": request.id, "fields": got.fields}, commit=False)
    db.commit()
    return request, created


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


def _already_done(request: DeletionRequest) -> AdminError:
    return AdminError(f"this request was already marked done on {request.done_at:%b %-d, %Y}")


def find_request(db: Session, district_id: int | None, request_id: int) -> DeletionRequest | None:
    """A request of the district by id (None for another district's: the same as none)."""
    return db.scalar(select(DeletionRequest).where(DeletionRequest.id == request_id,
                                                   DeletionRequest.district_id == district_id))


def requests_of(db: Session, district_id: int | None, *, person: Person | None = None,
                app: App | None = None, open_only: bool = False, limit: int = 500) -> list[DeletionRequest]:
    """The district's requests, open ones first, newest first."""
    query = select(DeletionRequest).where(DeletionRequest.district_id == district_id)
    if person is not None:
        query = query.where(DeletionRequest.person_id == person.id)
    if app is not None:
        query = query.where(DeletionRequest.app_id == app.id)
    if open_only:
        query = query.where(DeletionRequest.done_at.is_(None))
    return list(db.scalars(query.order_by(DeletionRequest.done_at.is_not(None), DeletionRequest.asked_at.desc(),
                                          DeletionRequest.id.desc()).limit(limit)))


def identifiers(request: DeletionRequest) -> list[tuple[str, str]]:
    """How the vendor finds the student: the subject always; the SAML NameID and the identifying
    fields the app received, while the roster still holds the student (the request keeps no
    name, username or email of its own)."""
    found = [("subject (the id the portal sent this app, different for every app)", request.subject)]
    person, app = request.person, request.app
    if person is None:
        return found
    shown = {"username": person.username, "email": person.email or "",
             "student_number": person.student_number or ""}
    nameid = (app.settings or {}).get("nameid", "subject") if app is not None and app.kind == AppKind.saml else ""
    for name in IDENTIFYING:
        if name in request.fields and shown[name]:
            label = f"{FIELDS[name]}, also the SAML NameID" if name == nameid else FIELDS[name]
            found.append((label, shown[name]))
    return found
