"""What was shared: the release records (audit "launch" and "userinfo" events) read back for
district admins.

Every launch, and OpenID userinfo (once per access token and set of fields), records which app
received which of a student's fields, by which protocol, and when (portal.audit). These read them: per app (how often, to how
many students, the latest releases) and per student (what each app has received about them: the
answer to a family's "what do you share about my child?").
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from sqlalchemy import and_, case, func, or_, select, union
from sqlalchemy.orm import Session, aliased

from portal.admin.services import only_district
from portal.audit import RELEASE_KINDS
from portal.auth.services import normalize_username
from portal.local_time import local
from portal.models import App, Event, Grant, KioskDevice, Person, School, Section
from portal.models.roster import typeable_username
from portal.roster.record import ROSTER_KINDS

LAUNCH = "launch"
log = logging.getLogger(__name__)


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


# How old the apps page's use of each app may be: counted again when older. The count reads every
# launch of the period (a large district's month is a million), so not at every view; the page
# says when it was counted.
USE_MAX_AGE = timedelta(minutes=5)
_USE_KEY = "portal:admin:use:"      # + district id + ":" + days -> the count, as JSON


@dataclass(frozen=True)
class RecentUse:
    apps: dict[int, AppUse]         # use_since(as_of - days), per app id
    as_of: datetime                 # when it was counted (at most USE_MAX_AGE ago)


def recent_use(db: Session, client: redis.Redis, district_id: int | None, now: datetime,
               days: int) -> RecentUse:
    """use_since over the `days` days before `now`, or as counted at most USE_MAX_AGE before
    `now` (kept in Redis for every server, per district). Redis away or its copy unreadable: it
    is counted here (and the page shown all the same)."""
    key = f"{_USE_KEY}{district_id}:{days}"
    try:
        kept = _read_use(client.get(key), now)
    except redis.RedisError as e:
        log.warning("redis unavailable for the apps' use, counted instead: %s", type(e).__name__)
        kept = client = None
    if kept is not None:
        return kept
    counted = RecentUse(use_since(db, district_id, now - timedelta(days=days)), now)
    if client is not None:
        try:
            client.set(key, _write_use(counted), px=int(USE_MAX_AGE.total_seconds() * 1000))
        except redis.RedisError as e:
            log.warning("redis unavailable to keep the apps' use: %s", type(e).__name__)
    return counted


def _write_use(use: RecentUse) -> str:
    return json.dumps({"as_of": use.as_of.isoformat(), "apps": [
        [app_id, u.launches, u.students, u.last_at.isoformat() if u.last_at else None]
        for app_id, u in use.apps.items()]})


def _read_use(raw, now: datetime) -> RecentUse | None:
    """The kept count, if it is one and no older than USE_MAX_AGE (nor from after `now`)."""
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        as_of = datetime.fromisoformat(data["as_of"])
        apps = {int(app_id): AppUse(int(launches), int(students),
                                    datetime.fromisoformat(last) if last is not None else None)
                for app_id, launches, students, last in data["apps"]}
    except (ValueError, TypeError, KeyError):
        return None
    if as_of.tzinfo is None or not timedelta(0) <= now - as_of < USE_MAX_AGE:
        return None
    return RecentUse(apps, as_of)


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


def username_sought(username: str) -> str | None:
    """The username as stored (lower-case, composed), or None for one no one can have."""
    name = normalize_username(username)
    return name if name and typeable_username(name) else None


def find_person(db: Session, district_id: int | None, username: str) -> Person | None:
    """A person of the district by username (None for anyone else: the same as no one)."""
    name = username_sought(username)
    if name is None:
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
    """Per app, what it has received about `person`; and the latest `limit` releases themselves.

    A student's records are kept as long as the student is (years of launches), so neither is
    read whole into memory: the database sums them up per app and field list (an app's fields
    change seldom, so that is a few rows), and hands over only the latest releases."""
    from portal.access import FIELDS

    # The field lists as text, grouped in a subquery: the JSON path written twice (in SELECT and
    # in GROUP BY) is two parameters to PostgreSQL, which then cannot tell they are the same.
    records = (select(Event.app_id, Event.kind, Event.at, Event.data["fields"].as_string().label("fields"))
               .where(Event.kind.in_(RELEASE_KINDS), Event.person_id == person.id).subquery())
    groups = list(db.execute(
        select(records.c.app_id, records.c.fields, func.count(case((records.c.kind == LAUNCH, 1))),
               func.min(records.c.at), func.max(records.c.at))
        .group_by(records.c.app_id, records.c.fields)))
    ids = {app_id for app_id, *_ in groups if app_id is not None}
    apps = {a.id: a for a in db.scalars(select(App).where(App.id.in_(ids)))} if ids else {}
    summaries: dict[object, dict] = {}
    for app_id, fields, launches, first, last in groups:
        app = apps.get(app_id)
        entry = summaries.setdefault(app_id, {"app": app, "name": app.name if app else "a removed app",
                                              "launches": 0, "first": first, "last": last, "fields": set()})
        entry["launches"] += launches
        entry["first"], entry["last"] = min(entry["first"], first), max(entry["last"], last)
        entry["fields"].update(_field_list(fields))
    order = list(FIELDS)
    result = [AppSummary(e["app"], e["name"], e["launches"], e["first"], e["last"],
                         sorted(e["fields"], key=lambda f: (order.index(f) if f in order else len(order), f)))
              for e in summaries.values()]
    result.sort(key=lambda s: s.app_name.lower())
    if limit <= 0:
        return result, []
    return result, _releases(db.execute(
        select(Event, Person, App).join(Person, Person.id == Event.person_id)
        .outerjoin(App, App.id == Event.app_id)
        .where(Event.kind.in_(RELEASE_KINDS), Event.person_id == person.id)
        .order_by(Event.at.desc(), Event.id.desc()).limit(limit)))


def _field_list(text) -> list[str]:
    """The fields of a release record's JSON list, as the database hands it over as text (none
    for anything else: a record is read back, never trusted to be well formed)."""
    try:
        fields = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return []
    return [str(f) for f in fields] if isinstance(fields, list) else []


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
    "app_secret_replaced": "an app got a new OpenID client secret",
    "app_settings_changed": "an app's sign-in addresses or certificate changed",
    "app_removed": "app removed (its grants with it)",
    "app_restored": "removed app back in use (not granted)",
    "hold_placed": "account put on hold",
    "hold_lifted": "hold lifted",
    "app_opted_out": "opted out of an app",
    "app_opted_in": "opted back in to an app",
    "deletion_requested": "an app was asked to delete what it received",
    "deletion_asked_again": "an app was asked again to delete what it received (the open request brought up to date)",
    "deletion_confirmed": "an app confirmed it deleted what it received",
    "deletion_merged": "a second open request to the same app was merged into the first",
    "roster_imported": "roster imported",
    "roster_refused": "roster import refused (nothing changed)",
}


# The events an app causes itself (its server reading the student's fields): by the app, not by
# a person. Every other event naming an app and no actor (a grant, a release, an opt-out) was made
# from the command line.
BY_THE_APP = frozenset({"userinfo"})


@dataclass(frozen=True)
class LogLine:
    at: datetime
    kind: str
    words: str
    person: Person | None
    actor: Person | None
    app: App | None
    details: list[tuple[str, str]]
    actor_name: str | None = None   # "Name (username)" as written: who did it, since removed

    @property
    def by_app(self) -> App | None:
        """The app that did this, for the log's "By" column (None: a person, or no one)."""
        return self.app if self.actor is None and self.kind in BY_THE_APP else None


# The events of a grant: made from the command line they are by no one and about no one, and
# name their group's ids (portal.audit.grant_scope); recorded before they did, they name nothing.
GRANT_KINDS = ("app_granted", "app_ungranted")


def _concerns(db: Session, district_id: int):
    """Whether an event by no one and about no one concerns the district, as SQL: only when its
    data proves it. It names one of the district's schools or classes (a device enrolled, a
    badge policy set, a sheet printed, an app granted to a school) or the district itself (an
    app granted to the whole district). An app change that names no group (an app's fields set
    from the command line; a grant recorded before grants named their ids, or to a grade or
    role alone) is the whole portal's: the district's when the portal has no other district,
    and, for any but a grant, when the app is open to the district now (its students receive
    those fields). A grant naming nothing may have been another district's school: never shown
    to a district of a portal with several. A roster import naming no district (recorded when the
    portal had none, or several) is the whole portal's, and every district's (portal.roster.record)."""
    its_schools = select(School.id).where(School.district_id == district_id)
    its_sections = select(Section.id).join(School, School.id == Section.school_id).where(
        School.district_id == district_id)
    school = Event.data["school_id"].as_integer()
    section = Event.data["section_id"].as_integer()
    district = Event.data["district_id"].as_integer()
    whole_portal = and_(Event.kind.in_(ROSTER_KINDS), district.is_(None))
    names_it = [school.in_(its_schools), section.in_(its_sections), district == district_id, whole_portal]
    names_nothing = and_(Event.app_id.is_not(None), school.is_(None), section.is_(None), district.is_(None))
    if only_district(db) == district_id:
        # Every app change is this district's (one naming a school since removed too).
        return or_(*names_it, Event.app_id.is_not(None))
    open_to_it = select(Grant.id).where(
        Grant.app_id == Event.app_id,
        or_(Grant.district_id == district_id, Grant.school_id.in_(its_schools), Grant.section_id.in_(its_sections),
            and_(Grant.district_id.is_(None), Grant.school_id.is_(None), Grant.section_id.is_(None)))).exists()
    return or_(*names_it, and_(names_nothing, Event.kind.not_in(GRANT_KINDS), open_to_it))


def audit_log(db: Session, district_id: int | None, *, kind: str | None = None,
              person: Person | None = None, removed: str | None = None, limit: int = 200) -> list[LogLine]:
    """The latest audit events of the district, newest first: those about or by its people, and
    those about no one that concern it (_concerns). Optionally one kind, or only the events about
    or by one person of the district, or only those by `removed`, the username of a staff member
    the roster removed (found by the name their events kept, among the district's events).

    The audit table holds every district's events for years, so the log is never read and
    sorted whole: it is the union of the latest `limit` events of each way an event can be the
    district's (about its people, by its people, about no one), each read newest first along
    an index (person and time, actor and time, kind and time; of one kind, kind and time of the
    events with an actor, of those about no one), then the latest of those."""
    if district_id is None or (person is not None and person.district_id != district_id):
        return []       # no district is no one's; another district's person is not in this log
    about, by = aliased(Person), aliased(Person)
    only = [Event.kind == kind] if kind else []
    ids = select(Event.id, Event.at)
    if person is not None:
        parts = [ids.where(Event.person_id == person.id, *only), ids.where(Event.actor_id == person.id, *only)]
    elif removed is not None:
        # PostgreSQL reads the index of removed people's events (its condition, then the kept
        # name's end); SQLite's planner prefers the events with no actor (actor_id's index).
        by_them = [Event.actor_id.is_(None), Event.actor_name.is_not(None),
                   Event.actor_name.endswith(f" ({removed})", autoescape=True), *only]
        parts = [ids.outerjoin(about, about.id == Event.person_id).where(
            *by_them, or_(about.district_id == district_id,
                          and_(Event.person_id.is_(None), _concerns(db, district_id))))]
    else:
        # Of one kind, "by its people" reads the index of the events that have an actor
        # (ix_audit_event_actor_kind_at), not every sign-in, launch or userinfo read of the kind
        # (they never have one); "about no one", that of its own few (ix_audit_event_no_one_kind_at).
        # Both planners infer actor_id IS NOT NULL from the join, but PostgreSQL then reckoned
        # with every event of the kind: said, it reckons with those that have an actor.
        parts = [ids.join(about, about.id == Event.person_id).where(about.district_id == district_id, *only),
                 ids.join(by, by.id == Event.actor_id).where(Event.actor_id.is_not(None),
                                                              by.district_id == district_id, *only),
                 ids.where(Event.person_id.is_(None), Event.actor_id.is_(None), _concerns(db, district_id),
                           *only)]
    # Each part a subquery of its own: SQLite takes no ORDER BY or LIMIT inside a bare UNION.
    latest = union(*(select(part.order_by(Event.at.desc(), Event.id.desc()).limit(limit).subquery())
                     for part in parts)).subquery()
    query = (select(Event, about, by, App)
             .join(latest, latest.c.id == Event.id)
             .outerjoin(about, about.id == Event.person_id)
             .outerjoin(by, by.id == Event.actor_id)
             .outerjoin(App, App.id == Event.app_id))
    rows = db.execute(query.order_by(Event.at.desc(), Event.id.desc()).limit(limit)).all()
    names = _names(db, district_id, [event.data for event, *_ in rows])
    lines = []
    for event, subject, actor, app in rows:
        data = event.data if isinstance(event.data, dict) else {}
        lines.append(LogLine(event.at, event.kind, EVENT_WORDS.get(event.kind, event.kind.replace("_", " ")),
                             subject, actor, app, [_detail(names, k, v) for k, v in data.items()
                                                         if k not in UNSHOWN and v is not None],
                             event.actor_name))
    return lines


# Details kept for the portal's own use, never shown: a release's keyed hashes of the identifying
# values it sent ("ids", portal.access.released_ids), which say nothing to a reader; the codes of
# the checks that refused a roster import ("refusals": its "refused_by" says them in words); the
# district's id that puts a grant or an import in this log (_concerns), this district's own.
UNSHOWN = frozenset({"ids", "refusals", "district_id"})

# Ids an event's details name, in the words of the log: what each is, and where its name is.
NAMED_IDS = {"school_id": "school", "section_id": "class", "device_id": "classroom device"}
DETAIL_WORDS = {"badge_id": "badge number", "students": "students", "paper": "paper",
                "wrong_tries": "wrong tries", "expires_at": "expires", "more_problems": "more problems not counted"}
# Details that are a moment, recorded in UTC (ISO 8601): shown on the district's clocks, as the
# log's When column shows its times.
MOMENTS = frozenset({"expires_at"})


def _names(db: Session, district_id: int, datas) -> dict[tuple[str, int], str]:
    """The names of the district's schools, classes and classroom devices that these events'
    details name by id (one query each, for the page's events only). Another district's, or
    one since removed, has no name here."""
    wanted: dict[str, set[int]] = {key: set() for key in NAMED_IDS}
    for data in datas:
        for key in NAMED_IDS:
            value = data.get(key) if isinstance(data, dict) else None
            if isinstance(value, int) and not isinstance(value, bool):
                wanted[key].add(value)
    names: dict[tuple[str, int], str] = {}
    in_district = School.district_id == district_id
    queries = {
        "school_id": select(School.id, School.name).where(School.id.in_(wanted["school_id"]), in_district),
        "section_id": select(Section.id, Section.title, School.name).join(School, School.id == Section.school_id)
        .where(Section.id.in_(wanted["section_id"]), in_district),
        "device_id": select(KioskDevice.id, KioskDevice.name, School.name).join(School, School.id == KioskDevice.school_id)
        .where(KioskDevice.id.in_(wanted["device_id"]), in_district),
    }
    for key, query in queries.items():
        if wanted[key]:
            for row in db.execute(query):
                names[key, row[0]] = row[1] if len(row) == 2 else f"{row[1]} ({row[2]})"
    return names


def _detail(names: dict, key, value) -> tuple[str, str]:
    """One detail of an event as the log shows it: a school, class or device by its name (by its
    number when it has gone), a list as a list, yes or no, any other key in words."""
    key = str(key)
    if key in NAMED_IDS:
        name = names.get((key, value)) if isinstance(value, int) else None
        return NAMED_IDS[key], name if name is not None else f"no. {value} (since removed)"
    words = DETAIL_WORDS.get(key, key.replace("_", " "))
    if key in MOMENTS:
        return words, _moment(value)
    if isinstance(value, bool):
        return words, "yes" if value else "no"
    return words, ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _moment(value) -> str:
    """A recorded moment on the district's clocks ("Mar 10, 2026 20:00 CDT"); one that does not
    read as a moment with its zone, as it is (a record is read back, never trusted)."""
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is not None:
            return f"{local(moment):%b %-d, %Y %H:%M %Z}"
    except (TypeError, ValueError, OverflowError):
        pass
    return str(value)
