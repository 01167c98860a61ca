"""What was shared: the release records (audit "launch" and "userinfo" events) read back for
district admins.

Every launch, and OpenID userinfo (once per access token and set of fields), records which app
received which of a student's fields, by which protocol, and when (portal.audit). These read them: per app (how often, to how
many students, the latest releases) and per student (what each app has received about them: the
answer to a family's "what do you share about my child?").
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from portal.audit import RELEASE_KINDS
from portal.auth.services import normalize_username
from portal.models import App, Event, Person, School, Section

LAUNCH = "launch"


@dataclass(frozen=True)
class AppUse:
    launches: int
    students: int
    last_at: datetime | None


def use_since(db: Session, district_id: int | None, since: datetime) -> dict[int, AppUse]:
    """For each app launched since `since` by people of the district: launches, distinct
    people, the latest launch."""
    rows = db.execute(
        select(Event.app_id, func.count(), func.count(func.distinct(Event.person_id)), func.max(Event.at))
        .join(Person, Person.id == Event.person_id)
        .where(Event.kind == LAUNCH, Event.at >= since, Event.app_id.is_not(None),
               Person.district_id == district_id)
        .group_by(Event.app_id))
    return {app_id: AppUse(launches, people, last) for app_id, launches, people, last in rows}


@dataclass(frozen=True)
class Release:
    at: datetime
    person: Person
    app: App | None                 # None: the app has since been removed
    protocol: str
    fields: list[str]
    kind: str = LAUNCH              # or "userinfo": the app read the fields after a launch


def _releases(rows) -> list[Release]:
    out = []
    for event, person, app in rows:
        data = event.data or {}
        fields = data.get("fields")
        out.append(Release(at=event.at, person=person, app=app, protocol=str(data.get("protocol", "")),
                           fields=[str(f) for f in fields] if isinstance(fields, list) else [],
                           kind=event.kind))
    return out


def releases_to_app(db: Session, district_id: int | None, app: App, limit: int = 200) -> list[Release]:
    """The app's latest releases about people of the district, newest first."""
    return _releases(db.execute(
        select(Event, Person, App).join(Person, Person.id == Event.person_id)
        .join(App, App.id == Event.app_id)
        .where(Event.kind.in_(RELEASE_KINDS), Event.app_id == app.id, Person.district_id == district_id)
        .order_by(Event.at.desc(), Event.id.desc()).limit(limit)))


def find_person(db: Session, district_id: int | None, username: str) -> Person | None:
    """A person of the district by username (None for anyone else: the same as no one)."""
    name = normalize_username(username)
    if not name or not name.isprintable():
        return None
    return db.scalar(select(Person).where(Person.username == name, Person.district_id == district_id))


@dataclass(frozen=True)
class AppSummary:
    """What one app has received about one person, over all the records kept."""
    app: App | None
    app_name: str
    launches: int
    first_at: datetime
    last_at: datetime
    fields: list[str]               # every field it has received, in catalogue order


def releases_about(db: Session, person: Person, limit: int = 500) -> tuple[list[AppSummary], list[Release]]:
    """Per app, what it has received about `person`; and the latest releases themselves."""
    from portal.access import FIELDS

    rows = list(db.execute(
        select(Event, Person, App).join(Person, Person.id == Event.person_id)
        .outerjoin(App, App.id == Event.app_id)
        .where(Event.kind.in_(RELEASE_KINDS), Event.person_id == person.id)
        .order_by(Event.at.desc(), Event.id.desc())))
    releases = _releases(rows)
    summaries: dict[object, dict] = {}
    for release, (event, _, app) in zip(releases, rows):
        key = event.app_id
        entry = summaries.setdefault(key, {"app": app, "name": app.name if app else "a removed app",
                                           "launches": 0, "first": release.at, "last": release.at,
                                           "fields": set()})
        entry["launches"] += release.kind == LAUNCH
        entry["first"] = min(entry["first"], release.at)
        entry["last"] = max(entry["last"], release.at)
        entry["fields"].update(release.fields)
    order = list(FIELDS)
    result = [AppSummary(e["app"], e["name"], e["launches"], e["first"], e["last"],
                         sorted(e["fields"], key=lambda f: (order.index(f) if f in order else len(order), f)))
              for e in summaries.values()]
    result.sort(key=lambda s: s.app_name.lower())
    return result, releases[:limit]


# Each kind of audit event in the words the log page shows.
EVENT_WORDS = {
    "sign_in": "signed in",
    "launch": "opened an app",
    "userinfo": "an app read their data again (OpenID userinfo)",
    "password_set": "got a new password",
    "badge_issued": "got a new badge",
    "badge_voided": "badge voided",
    "badge_voided_reuse": "a voided badge was scanned",
    "badge_sheet_printed": "badge sheet printed",
    "badge_factor_set": "chose a PIN or pictures",
    "badge_factor_locked": "locked out after wrong PINs or pictures",
    "badge_factor_unlocked": "may try the PIN or pictures again",
    "badge_factor_reset": "PIN or pictures cleared",
    "badge_policy_set": "badge policy changed",
    "kiosk_enrolled": "classroom device enrolled",
    "kiosk_revoked": "classroom device stopped",
    "class_signed_out": "class signed out",
    "app_granted": "app granted",
    "app_ungranted": "grant removed",
    "app_release_set": "fields an app receives changed",
    "hold_placed": "account put on hold",
    "hold_lifted": "hold lifted",
    "app_opted_out": "opted out of an app",
    "app_opted_in": "opted back in to an app",
    "deletion_requested": "an app was asked to delete what it received",
    "deletion_confirmed": "an app confirmed it deleted what it received",
}


@dataclass(frozen=True)
class LogLine:
    at: datetime
    kind: str
    words: str
    person: Person | None
    actor: Person | None
    app: App | None
    details: list[tuple[str, str]]


def audit_log(db: Session, district_id: int | None, *, kind: str | None = None,
              person: Person | None = None, limit: int = 200) -> list[LogLine]:
    """The latest audit events of the district, newest first: those about or by its people, and
    those about no one that concern it: an app changed from the command line (apps are shared),
    or one of its schools or classes (a device enrolled, a badge policy set, a sheet printed).
    Optionally one kind, or only the events about or by one person."""
    about, by = aliased(Person), aliased(Person)
    its_schools = select(School.id).where(School.district_id == district_id)
    its_sections = select(Section.id).join(School, School.id == Section.school_id).where(
        School.district_id == district_id)
    query = (select(Event, about, by, App)
             .outerjoin(about, about.id == Event.person_id)
             .outerjoin(by, by.id == Event.actor_id)
             .outerjoin(App, App.id == Event.app_id)
             .where(or_(about.district_id == district_id, by.district_id == district_id,
                        and_(Event.person_id.is_(None), Event.actor_id.is_(None),
                             or_(Event.app_id.is_not(None),
                                 Event.data["school_id"].as_integer().in_(its_schools),
                                 Event.data["section_id"].as_integer().in_(its_sections))))))
    if kind:
        query = query.where(Event.kind == kind)
    if person is not None:
        query = query.where(or_(Event.person_id == person.id, Event.actor_id == person.id))
    lines = []
    for event, subject, actor, app in db.execute(query.order_by(Event.at.desc(), Event.id.desc()).limit(limit)):
        data = event.data if isinstance(event.data, dict) else {}
        details = [(str(k), ", ".join(map(str, v)) if isinstance(v, list) else str(v)) for k, v in data.items()]
        lines.append(LogLine(event.at, event.kind, EVENT_WORDS.get(event.kind, event.kind.replace("_", " ")),
                             subject, actor, app, details))
    return lines
