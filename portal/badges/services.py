"""Badge lifecycle: issue, reissue, temporary badges, void (one, a section, a school, people).

Each function takes what it needs: the database session, Redis (to end sessions), a clock, and
the acting person (None for the command line, which runs with the operator's authority).
Tokens are returned once, in IssuedBadge, and never stored: the database holds their SHA-256.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone, tzinfo
from typing import Collection, Iterable

import redis
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import audit
from portal.badges.expiry import Clock, permanent_expiry, temporary_expiry, utcnow
from portal.badges.permissions import (
    at_school, may_manage_school, may_manage_section, may_manage_student, may_manage_student_at,
)
from portal.badges.policy import policy_for
from portal.badges.sessions import end_sessions_of_revoked
from portal.badges.token import mint_token, token_hash
from portal.errors import PortalError
from portal.models import (
    Badge, BadgeKind, Enrollment, Person, PersonSchool, Role, School, Section,
)
from portal.names import by_name
from portal.redis_store import redis_said

log = logging.getLogger(__name__)


class BadgeError(PortalError):
    status = 400
    title = "That badge can't be made"
    advice = "Check the student and try again."


class NotPermitted(PortalError):
    status = 403
    title = "You can't change that student's badge"
    advice = "Only their teachers at that school, and its admins, can."


@dataclass(frozen=True)
class IssuedBadge:
    """A new badge and its token: print it now, it cannot be shown again."""
    person: Person
    badge: Badge
    token: str
    # (badge id, owner id) of the badges it replaced, whose sessions end once it is committed
    replaced: list = field(default_factory=list, repr=False)
    # False when Redis failed after the commit, before those sessions ended (see finished)
    sessions_ended: bool = True

    @property
    def note(self) -> str:
        """What whoever hands the badge out must hear with it: "" when all went well."""
        if self.sessions_ended:
            return ""
        old = "card" if self.badge.kind is BadgeKind.permanent else "temporary badge"
        return f"The old {old} no longer works. Apps opened with it may stay signed in until they time out."


# A student's `enabled`, read under a row lock (portal.badges.services._issue).
_ENABLED_FOR_UPDATE = (select(Person.enabled).where(Person.id == bindparam("person_id"))
                       .with_for_update())


def _require(allowed: bool) -> None:
    if not allowed:
        raise NotPermitted()


def badge_school_for(db: Session, student: Person, actor: Person | None = None) -> School:
    """The school a new badge works at: the student's school (shared with the actor if several)."""
    schools = list(db.scalars(select(School).join(PersonSchool, PersonSchool.school_id == School.id)
                              .where(PersonSchool.person_id == student.id).order_by(School.id)))
    if actor is not None and len(schools) > 1:
        mine = [s for s in schools if may_manage_student_at(db, actor, student, s)]
        schools = mine or schools
    if not schools:
        raise BadgeError("That student is not in any school", "Import the roster, then try again.")
    if len(schools) > 1:
        raise BadgeError("That student is in more than one school",
                         "Say which school the badge is for.")
    return schools[0]


def badge_schools_of(db: Session, actor: Person, student: Person) -> list[int]:
    """The ids of the schools of `student`'s badges whose badges `actor` may issue, void and see
    (another school's card is its staff's: a student at two schools has one for each)."""
    schools = db.scalars(select(School).where(School.id.in_(
        select(Badge.school_id).where(Badge.person_id == student.id))).order_by(School.id))
    return [school.id for school in schools if may_manage_student_at(db, actor, student, school)]


def active_badges(db: Session, person_id: int, now: datetime) -> list[Badge]:
    """The person's badges that work now (permanent first)."""
    badges = db.scalars(select(Badge).where(Badge.person_id == person_id,
                                            Badge.revoked_at.is_(None)).order_by(Badge.kind))
    return [b for b in badges if b.usable_at(now)]


class CardChanged(BadgeError):
    """A badge that works was made for the student since the page that pressed was shown (in
    another tab, or by someone else): a press from that page would stop it unseen."""
    status = 409
    advice = "Nothing changed here. Reload the class page to see it."

    def __init__(self, student: Person, kind: BadgeKind):
        what = "A card" if kind is BadgeKind.permanent else "A temporary badge"
        super().__init__(f"{what} was just printed for {student.display_name} in another tab or "
                         "by someone else")


def _only_expected(db: Session, where: tuple, expect: Collection[int] | None,
                   now: datetime) -> tuple:
    """`where` (the badges a press would revoke), once checked against `expect`: the ids of the
    working badges the page that pressed showed (None: no page, a script; nothing is checked).
    Raises CardChanged when a badge that works now is not one of them.

    Narrowed to the badges read here: one made after this read (SQLite reads outside the write
    lock) is then left working, and a new badge beside it meets the one-working-badge index."""
    if expect is None:
        return where
    found = db.scalars(select(Badge).where(Badge.revoked_at.is_(None), *where)
                       .order_by(Badge.id)).all()
    for badge in found:
        if badge.usable_at(now) and badge.id not in expect:
            raise CardChanged(badge.person, badge.kind)
    return (*where, Badge.id.in_([badge.id for badge in found]))


def issue_badge(db: Session, client: redis.Redis, student: Person, *, school: School | None = None,
                actor: Person | None = None, temporary_hours: int | None = None,
                default_expires: str = "07-31", zone: tzinfo = timezone.utc,
                clock: Clock = utcnow, expect: Collection[int] | None = None) -> IssuedBadge:
    """Issue a badge; a new permanent badge revokes the old one at that school at once (and its
    sessions). A student at two schools has a card for each: one school's leaves the other's.

    A temporary badge (1 to 12 hours, for a forgotten card) sits beside the permanent card and
    replaces only an earlier temporary badge of the same school.

    `expect`: the ids of the badges of that kind (and school) that the page pressing showed
    working; when another works now, nothing changes (CardChanged).
    """
    if actor is not None:
        _require(may_manage_student(db, actor, student))
        # A badge for a school where the actor does not teach the student or run would void the
        # card the student uses there: that school's staff decide its badges. That holds for the
        # school chosen for the actor too (a student in a class the actor teaches at another school).
        school = school or badge_school_for(db, student, actor)
        _require(may_manage_student_at(db, actor, student, school))
    return _issue(db, client, student, school=school, actor=actor,
                  temporary_hours=temporary_hours, default_expires=default_expires, zone=zone,
                  clock=clock, expect=expect)


def _issue(db: Session, client: redis.Redis, student: Person, *, school: School | None,
           actor: Person | None, temporary_hours: int | None, default_expires: str,
           clock: Clock, zone: tzinfo = timezone.utc, commit: bool = True,
           expect: Collection[int] | None = None) -> IssuedBadge:
    if student.role is not Role.student:
        raise BadgeError("Badges are for students", "Staff sign in with their password.")
    if commit:
        # Redis before the database (as _void): a refusal here has changed nothing, and once
        # the new badge is committed it is handed out, whatever Redis does (see finished).
        client.ping()
    # Read under a row lock (PostgreSQL; SQLite has one writer at a time): a roster import that
    # turns the student off and revokes their cards meanwhile is waited for and then seen, so
    # no card is left that it did not revoke (found by review: one came back to life when a
    # later import turned the student on again). The person first, then badges, as the import.
    if not db.scalar(_ENABLED_FOR_UPDATE, {"person_id": student.id}):
        raise BadgeError("That student's account is turned off", "Ask the district to turn it on.")
    school = school or badge_school_for(db, student, actor)
    if db.get(PersonSchool, (student.id, school.id)) is None:
        raise BadgeError("That student is not in that school")
    now = clock()
    if temporary_hours is None:
        kind = BadgeKind.permanent
        expires_at = permanent_expiry(now, policy_for(db, school.id).expires_on or default_expires,
                                      zone)
    else:
        kind = BadgeKind.temporary
        try:
            expires_at = temporary_expiry(now, temporary_hours)
        except ValueError as e:
            raise BadgeError("A temporary badge lasts 1 to 12 hours", str(e).capitalize() + ".") from None

    mine = _only_expected(db, (Badge.person_id == student.id, Badge.kind == kind,
                               Badge.school_id == school.id), expect, now)
    replaced = _revoke(db, mine, reason="reissued", actor=actor, now=now)
    token = mint_token()
    badge = Badge(person_id=student.id, school_id=school.id, token_hash=token_hash(token),
                  kind=kind, issued_at=now, issued_by_id=actor.id if actor else None,
                  expires_at=expires_at)
    db.add(badge)
    try:
        db.flush()
    except IntegrityError:
        # Someone issued one in the same instant; the unique index kept it to one.
        db.rollback()
        if expect is not None:   # a page's press: it says so as when the badge came first
            raise CardChanged(student, kind) from None
        raise BadgeError("Another badge was just made for that student", "Try again.") from None
    audit.record("badge_issued", person=student, actor=actor, commit=False,
                 data={"badge_id": badge.id, "kind": kind.value, "school_id": school.id,
                       "expires_at": expires_at.isoformat()})
    issued = IssuedBadge(student, badge, token, replaced)
    if commit:
        db.commit()
        issued = replace(issued, sessions_ended=finished(client, [issued]))
    return issued


class SheetConflict(BadgeError):
    """Another tab or person printed (or replaced) this class's cards meanwhile."""
    status = 409
    title = "This class's badges were just printed in another tab or by someone else"
    advice = "Use that sheet: nothing was printed or changed here."


class RosterChanged(SheetConflict):
    """A roster import turned off one of the sheet's students while it was being made."""
    title = "The roster changed while this sheet was being made"
    advice = "Nothing was printed or changed: print it again."


@dataclass(frozen=True)
class SectionPlan:
    """Whom a class's sheet is for, read before anything is written."""
    section: Section
    students: list[Person]          # the sheet's students, in name order
    badge_students: int             # the class's students who use a badge (the sheet's or not)
    stale: tuple[int, ...]          # ids of the sheet's students' unrevoked cards it replaces
    working_ids: tuple[int, ...]    # the cards of the class's badge students that work now
    expires_at: datetime
    now: datetime

    @property
    def fingerprint(self) -> str:
        return cards_fingerprint(self.working_ids)


def cards_fingerprint(card_ids: Iterable[int]) -> str:
    """A short name for a set of working cards: a page shows it with its "Replace every card"
    button, so a press from a page older than the cards (another tab printed meanwhile) changes
    nothing."""
    joined = ",".join(str(i) for i in sorted(card_ids))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def plan_section_badges(db: Session, section: Section, *, replace: bool = False, default_expires: str = "07-31",
                        zone: tzinfo = timezone.utc, clock: Clock = utcnow) -> SectionPlan:
    """Whom a class's sheet is for (reads only): the class's badge students, in name order, with
    no card that works at the class's school; with `replace`, all of them (their working cards
    would stop). A card may have been printed for another class of the student's: it is theirs
    until someone means to replace it. Who may print it is the caller's to check."""
    policy = policy_for(db, section.school_id)
    students = [student for student in by_name(db.scalars(
        select(Person).join(Enrollment, Enrollment.person_id == Person.id)
        .where(Enrollment.section_id == section.id, Enrollment.role == "student",
               Person.role == Role.student, Person.enabled.is_(True),
               at_school(Person.id, section.school_id))).unique())
        if policy.allows(student)]
    now = clock()
    unrevoked: dict[int, list[Badge]] = {}
    ids = [student.id for student in students]
    for start in range(0, len(ids), 500):
        for badge in db.scalars(select(Badge).where(
                Badge.person_id.in_(ids[start:start + 500]), Badge.kind == BadgeKind.permanent,
                Badge.school_id == section.school_id, Badge.revoked_at.is_(None))):
            unrevoked.setdefault(badge.person_id, []).append(badge)
    working = {badge.person_id: badge.id for badges in unrevoked.values() for badge in badges
               if badge.usable_at(now)}
    chosen = students if replace else [s for s in students if s.id not in working]
    return SectionPlan(
        section=section, students=chosen, badge_students=len(students),
        stale=tuple(b.id for s in chosen for b in unrevoked.get(s.id, [])),
        working_ids=tuple(sorted(working.values())),
        expires_at=permanent_expiry(now, policy.expires_on or default_expires, zone), now=now)


def issue_planned(db: Session, plan: SectionPlan, tokens: list[str], *,
                  actor: Person | None = None) -> list[IssuedBadge]:
    """Write the plan's new cards with these tokens, and revoke the cards they replace (not
    committed). Raises SheetConflict, rolled back, when another tab or person made a card for
    one of these students since the plan was read: the database keeps one working card each."""
    school_id = plan.section.school_id
    person_ids = [student.id for student in plan.students]
    # As _issue: the students' rows locked and read again, so a roster import that turned one
    # off meanwhile (and revoked their cards) is seen, not undone by a card made after it.
    if person_ids and len(db.scalars(select(Person.id).where(
            Person.id.in_(person_ids), Person.enabled.is_(True)).with_for_update()).all()) != len(person_ids):
        db.rollback()
        raise RosterChanged()
    replaced = _revoke(db, (Badge.id.in_(plan.stale),), reason="reissued", actor=actor,
                       now=plan.now, expire=False) if plan.stale else []
    badges = [Badge(person_id=person_id, school_id=school_id, token_hash=token_hash(token),
                    kind=BadgeKind.permanent, issued_at=plan.now,
                    issued_by_id=actor.id if actor else None, expires_at=plan.expires_at)
              for person_id, token in zip(person_ids, tokens, strict=True)]
    db.add_all(badges)
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        raise SheetConflict() from None
    issued = []
    for student, badge, token in zip(plan.students, badges, tokens):
        audit.record("badge_issued", person=student, actor=actor, commit=False,
                     data={"badge_id": badge.id, "kind": BadgeKind.permanent.value,
                           "school_id": school_id, "expires_at": plan.expires_at.isoformat()})
        issued.append(IssuedBadge(student, badge, token,
                                  [pair for pair in replaced if pair[1] == student.id]))
    return issued


def finish_issuing(client: redis.Redis, issued: list[IssuedBadge]) -> None:
    """After new badges were committed: end the sessions of the cards they replaced."""
    end_sessions_of_revoked(client, [pair for one in issued for pair in one.replaced])


def finished(client: redis.Redis, issued: list[IssuedBadge]) -> bool:
    """finish_issuing, for a caller that hands the new badges out whatever happens: False (and a
    line in the log) when Redis failed (gone, or full and refusing writes). The replaced badges
    are refused all the same, at every scan and every request of a session begun with one (it
    is checked in the database), but no app signed in with one is told, and its own session
    lasts until it times out: the answer says so (IssuedBadge.note), not "unavailable", for the
    new badges are committed and their tokens are in that answer alone."""
    try:
        finish_issuing(client, issued)
    except redis.RedisError as e:
        log.warning("new badges were made, but Redis failed before the sessions of the badges "
                    "they replaced ended: %s", redis_said(e))
        return False
    return True


def _revoke(db: Session, where: tuple, *, reason: str, actor: Person | None,
            now: datetime, expire: bool = True) -> list[tuple[int, int]]:
    """Revoke the active badges matching `where` (not committed); return (badge id, owner id)
    of each. expire=False: the session's loaded objects are left as they are (the caller no
    longer reads those badges), so none is loaded again while the write lock is held."""
    rows = list(db.execute(select(Badge.id, Badge.person_id)
                           .where(Badge.revoked_at.is_(None), *where)))
    if not rows:
        return []
    ids = [badge_id for badge_id, _ in rows]
    db.execute(update(Badge).where(Badge.id.in_(ids), Badge.revoked_at.is_(None))
               .values(revoked_at=now, revoked_reason=reason[:64])
               .execution_options(synchronize_session=False))
    # One INSERT of every event (a school's void is thousands): the owners by id, not loaded.
    audit.record_many("badge_voided", [(person_id, {"badge_id": badge_id, "reason": reason[:64]})
                                       for badge_id, person_id in rows], actor=actor, commit=False)
    if expire:
        db.expire_all()
    return [(badge_id, person_id) for badge_id, person_id in rows]


class SessionsNotEnded(PortalError):
    """The badges were voided (committed), but Redis went away before their sessions ended: a
    rerun finds no badge left to void, so whoever sees this must hear what was and was not done."""
    status = 503
    title = "The badges no longer work, but a session begun with one was not ended"
    advice = "The session store went away: such a session lasts until it times out."

    def __init__(self, students: int):
        super().__init__()
        self.students = students


def _void(db: Session, client: redis.Redis, where: tuple, *, reason: str,
          actor: Person | None, clock: Clock) -> int:
    # Redis before the database: once the void is committed, a rerun finds nothing to void and
    # so would never end the sessions the badges began.
    client.ping()
    revoked = _revoke(db, where, reason=reason, actor=actor, now=clock())
    db.commit()
    students = len({person_id for _, person_id in revoked})
    # After the commit, so a sign-in racing with us already sees the badge revoked (and one
    # that checked it just before is ended all the same).
    try:
        end_sessions_of_revoked(client, revoked)
    except redis.RedisError:
        raise SessionsNotEnded(students) from None
    return students


def void_badges_for_person(db: Session, client: redis.Redis, student: Person, *,
                           school: School | None = None, reason: str = "voided",
                           actor: Person | None = None, clock: Clock = utcnow,
                           expect: Collection[int] | None = None) -> int:
    """Void one student's badges at `school` (at every school when None) and end their badge
    sessions; return 1 if any went.

    An actor voids only the badges of schools they may issue badges for: a student at two
    schools keeps the card the other school's staff gave them. `expect`: the ids of the badges
    the page pressing showed working; when another works now, nothing changes (CardChanged)."""
    where = [Badge.person_id == student.id]
    if school is not None:
        where.append(Badge.school_id == school.id)
    if actor is not None:
        _require(may_manage_student(db, actor, student))
        if school is not None:
            _require(may_manage_student_at(db, actor, student, school))
        else:
            where.append(Badge.school_id.in_(badge_schools_of(db, actor, student)))
    return _void(db, client, _only_expected(db, tuple(where), expect, clock()), reason=reason,
                 actor=actor, clock=clock)


def void_badges_for_people(db: Session, client: redis.Redis, person_ids: Iterable[int],
                           reason: str, *, actor: Person | None = None,
                           clock: Clock = utcnow) -> int:
    """Void the badges of these people (disabled or removed by the roster); return how many
    people had any. For trusted callers such as the roster importer: no permission check."""
    # Every badge in the database first: Redis failing below must not leave some working.
    revoked = revoke_badges_for_people(db, person_ids, reason, actor=actor, clock=clock)
    db.commit()
    end_sessions_of_revoked(client, revoked)
    return len({person_id for _, person_id in revoked})


def revoke_badges_for_people(db: Session, person_ids: Iterable[int], reason: str, *,
                             actor: Person | None = None,
                             clock: Clock = utcnow) -> list[tuple[int, int]]:
    """Revoke the badges of these people in the caller's transaction (not committed); return
    (badge id, owner id) of each, for end_sessions_of_revoked once committed."""
    ids, revoked = sorted(set(person_ids)), []
    for start in range(0, len(ids), 500):
        revoked += _revoke(db, (Badge.person_id.in_(ids[start:start + 500]),), reason=reason,
                           actor=actor, now=clock())
    return revoked


def void_badges_for_section(db: Session, client: redis.Redis, section: Section, *,
                            reason: str = "section voided", actor: Person | None = None,
                            clock: Clock = utcnow) -> int:
    """Void the badges of every student of the section at its school (a student's card at
    another school is that school's); return how many students had any."""
    if actor is not None:
        _require(may_manage_section(db, actor, section))
    # The class's students now (not one the roster moved to another school and left enrolled
    # here), and their cards for the class's school only.
    students = select(Enrollment.person_id).where(Enrollment.section_id == section.id,
                                                  Enrollment.role == "student",
                                                  at_school(Enrollment.person_id, section.school_id))
    return _void(db, client, (Badge.person_id.in_(students), Badge.school_id == section.school_id),
                 reason=reason, actor=actor, clock=clock)


def void_badges_for_school(db: Session, client: redis.Redis, school: School, *,
                           reason: str = "school voided", actor: Person | None = None,
                           clock: Clock = utcnow) -> int:
    """Void every badge that works at the school; return how many students had any."""
    if actor is not None:
        _require(may_manage_school(db, actor, school))
    return _void(db, client, (Badge.school_id == school.id,), reason=reason, actor=actor,
                 clock=clock)
