"""What the teacher pages show: the classes a staff member looks after, each class's students
with their badges and second factor, and recent scans of voided badges.

Reads only. Every change goes through portal.badges.services (via the badge routes), which
checks the actor's right to it again on the server.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.badges.permissions import (
    TEACHING_ROLES, at_school, manages_student, may_manage_school, taught_where,
)
from portal.badges.policy import EffectivePolicy, policy_for
from portal.models import (
    Badge, BadgeFactor, BadgeKind, Enrollment, Event, FactorKind, KioskDevice, Person, PersonSchool,
    Role, School, Section,
)
from portal.names import by_name, by_word

REUSE_KIND = "badge_voided_reuse"
REUSE_DAYS = 30  # how far back the teacher pages and /badges/reuse look for voided-badge scans


def schools_for(db: Session, actor: Person) -> list[School]:
    """The schools whose classes an admin looks after (a teacher: none; they see their classes)."""
    if actor.role is Role.district_admin and actor.district_id is not None:
        query = select(School).where(School.district_id == actor.district_id)
    elif actor.role is Role.school_admin:
        query = (select(School).join(PersonSchool, PersonSchool.school_id == School.id)
                 .where(PersonSchool.person_id == actor.id))
    else:
        return []
    return [s for s in by_word(db.scalars(query)) if may_manage_school(db, actor, s)]


def classes_for(db: Session, actor: Person, school: School | None = None) -> list[Section]:
    """A teacher's own classes; an admin's classes of `school` (which they must manage)."""
    if actor.role is Role.teacher:
        # Those at the schools the roster puts the teacher at (permissions.at_school).
        query = (select(Section).join(Enrollment, Enrollment.section_id == Section.id)
                 .where(Enrollment.person_id == actor.id, Enrollment.role.in_(TEACHING_ROLES),
                        at_school(actor.id, Section.school_id)))
    elif school is not None and may_manage_school(db, actor, school):
        query = select(Section).where(Section.school_id == school.id)
    else:
        return []
    return by_word(db.scalars(query).unique(), "title")


def _device_names(db: Session, ids) -> dict[int, str]:
    """Device id -> name, in one statement (None and unknown ids are left out)."""
    ids = {i for i in ids if isinstance(i, int)}
    if not ids:
        return {}
    return dict(db.execute(select(KioskDevice.id, KioskDevice.name).where(KioskDevice.id.in_(ids))).all())


@dataclass(frozen=True)
class StudentRow:
    """One student of a class, as the class page shows them."""
    person: Person
    uses_badge: bool
    card: Badge | None              # the permanent badge that works now
    temporary: Badge | None         # a temporary badge that works now
    last_used_at: datetime | None   # of either
    last_used_on: str | None        # the device's name (None: the browser scanner, or never)
    factor: FactorKind | None       # the second factor their grade adds
    factor_set: bool
    locked: bool
    # Who issued the card: a staff member (by name), or None for the command line (or for
    # someone the roster has removed since: card_issuer_name is then their name as they were).
    card_issuer: Person | None = None
    card_issuer_name: str | None = None


def class_rows(db: Session, section: Section, now: datetime) -> tuple[list[StudentRow], EffectivePolicy]:
    """The section's students (family name order) with their working badges at the section's
    school and second factor."""
    policy = policy_for(db, section.school_id)
    students = by_name(db.scalars(
        select(Person).join(Enrollment, Enrollment.person_id == Person.id)
        .where(Enrollment.section_id == section.id, Enrollment.role == "student",
               Person.role == Role.student, at_school(Person.id, section.school_id))).unique())
    ids = [s.id for s in students]
    working: dict[tuple[int, BadgeKind], Badge] = {}
    factors: dict[int, BadgeFactor] = {}
    if ids:
        # The cards of this class's school: one at another school is that school's to show.
        for badge in db.scalars(select(Badge).where(Badge.person_id.in_(ids), Badge.revoked_at.is_(None),
                                                    Badge.school_id == section.school_id,
                                                    Badge.expires_at > now)
                                .order_by(Badge.issued_at, Badge.id)):
            working[(badge.person_id, badge.kind)] = badge  # the newest of each kind wins
        factors = {f.person_id: f for f in db.scalars(select(BadgeFactor)
                                                      .where(BadgeFactor.person_id.in_(ids)))}
    devices = _device_names(db, {b.last_used_device_id for b in working.values()})
    cards = [b for (_, kind), b in working.items() if kind is BadgeKind.permanent]
    issuers, removed = _issuers(db, cards)
    rows = []
    for student in students:
        card = working.get((student.id, BadgeKind.permanent))
        temporary = working.get((student.id, BadgeKind.temporary))
        used = max((b for b in (card, temporary) if b and b.last_used_at),
                   key=lambda b: b.last_used_at, default=None)
        factor_row = factors.get(student.id)
        factor = policy.factor_for(student)
        rows.append(StudentRow(
            person=student, uses_badge=policy.allows(student), card=card, temporary=temporary,
            last_used_at=used.last_used_at if used else None,
            last_used_on=devices.get(used.last_used_device_id) if used else None,
            factor=factor,
            factor_set=bool(factor_row and factor and factor_row.secret_hash(factor)),
            locked=bool(factor_row and factor_row.locked_at),
            card_issuer=issuers.get(card.issued_by_id) if card else None,
            card_issuer_name=removed.get(card.id) if card else None))
    return rows, policy


def _issuers(db: Session, cards: list[Badge]) -> tuple[dict[int, Person], dict[int, str]]:
    """Who issued these cards: {person id: Person} of the staff who did, and {card id: name as
    they were} of cards whose issuer the roster has removed since (the audit log keeps the name;
    a card with neither came from the command line)."""
    ids = {b.issued_by_id for b in cards if b.issued_by_id is not None}
    people = {p.id: p for p in db.scalars(select(Person).where(Person.id.in_(ids)))} if ids else {}
    unknown = {b.id: b.person_id for b in cards if b.issued_by_id is None}
    removed: dict[int, str] = {}
    if unknown:
        for event in db.scalars(select(Event).where(
                Event.kind == "badge_issued", Event.person_id.in_(set(unknown.values())),
                Event.actor_id.is_(None), Event.actor_name.is_not(None))):
            badge_id = (event.data or {}).get("badge_id")
            if unknown.get(badge_id) == event.person_id:
                removed[badge_id] = event.actor_name
    return people, removed


@dataclass(frozen=True)
class ReuseAlert:
    """A voided badge scanned again: a lost card may be in other hands."""
    at: datetime
    student: Person
    badge_id: int | None
    via: str | None                 # "kiosk" or "browser"
    device: str | None


def recent_reuse(db: Session, actor: Person, since: datetime,
                 person_ids: Iterable[int] | None = None, limit: int = 200) -> list[ReuseAlert]:
    """Scans of voided badges since `since` of the students `actor` may manage (of `person_ids`
    only, when given), newest first."""
    query = (select(Event, Person).join(Person, Person.id == Event.person_id)
             .where(Event.kind == REUSE_KIND, Event.at >= since,
                    manages_student(actor, Event.person_id)))
    if person_ids is not None:
        query = query.where(Event.person_id.in_(list(person_ids)))
    rows = list(db.execute(query.order_by(Event.at.desc(), Event.id.desc()).limit(limit)))
    # Another school's card is its staff's (a student at two schools has one at each): the scans
    # of this one, and its devices' names, are theirs to see, and a teacher's only where they
    # teach the student (may_manage_student_at; one statement for all the rows).
    taught = (taught_where(db, actor, {p.id for _, p in rows}) if actor.role is Role.teacher else None)
    schools: dict[object, bool] = {}

    def mine(event: Event, person: Person) -> bool:
        sid = (event.data or {}).get("school_id")
        if sid is None:
            return True
        if taught is not None:
            return (person.id, sid) in taught
        if sid not in schools:
            school = db.get(School, sid) if isinstance(sid, int) and not isinstance(sid, bool) else None
            schools[sid] = school is not None and may_manage_school(db, actor, school)
        return schools[sid]

    rows = [(e, p) for e, p in rows if mine(e, p)]
    devices = _device_names(db, {(e.data or {}).get("device_id") for e, _ in rows})
    alerts = []
    for event, person in rows:
        data = event.data or {}
        alerts.append(ReuseAlert(at=event.at, student=person, badge_id=data.get("badge_id"),
                                 via=data.get("via"), device=devices.get(data.get("device_id"))))
    return alerts
