"""The second factor after a badge: a PIN (4 to 6 digits) or three pictures picked in order
from a grid of twelve. Chosen by the student at their first badge sign-in, stored argon2-hashed,
reset by a teacher. Wrong tries in a row are counted per student in the database, however
slowly they come and with whichever badge. As many as PORTAL_BADGE_FACTOR_LIMIT allows ("5 per
15 minutes": five) lock the student's badge sign-in until a teacher helps, whether they came
inside its moving window or one a week.
"""
from __future__ import annotations

import hashlib
import re
from typing import Sequence

from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Row, case, literal, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import audit
from portal.auth.passwords import hasher
from portal.badges.expiry import Clock, utcnow
from portal.badges.permissions import may_manage_student
from portal.badges.services import NotPermitted
from portal.errors import PortalError
from portal.models import BadgeFactor, FactorKind, Person
from portal.ratelimit import RateLimiter


# The picture grid: a name (what is stored and posted) and the label shown under the picture.
PICTURES: tuple[tuple[str, str], ...] = (
    ("cat", "Cat"), ("dog", "Dog"), ("fish", "Fish"), ("bird", "Bird"),
    ("tree", "Tree"), ("flower", "Flower"), ("sun", "Sun"), ("moon", "Moon"),
    ("star", "Star"), ("car", "Car"), ("boat", "Boat"), ("house", "House"),
)
PICTURE_NAMES = tuple(name for name, _ in PICTURES)
PICTURES_TO_PICK = 3
_PIN = re.compile(r"^[0-9]{4,6}$")
# A young child presses twice (a double-click, Enter pressed again while the page loads): the
# same wrong answer again this soon is one wrong try, not two. Repeating an answer tells a
# guesser nothing new, so this gives them nothing.
SAME_ANSWER_SECONDS = 3


class BadFactorChoice(PortalError):
    status = 400
    title = "That can't be used"
    advice = "Try again."


class WrongFactor(PortalError):
    status = 401
    title = "That's not it"
    advice = "Try again, or ask your teacher for help."


class FactorLocked(PortalError):
    status = 403
    title = "Your teacher needs to help you sign in"
    advice = "Show this to your teacher."


def secret_text(kind: FactorKind, value: str | Sequence[str]) -> str:
    """The canonical text of a PIN or of a picture sequence, refusing anything else."""
    if kind is FactorKind.pin:
        pin = value.strip() if isinstance(value, str) else ""
        if not _PIN.match(pin):
            raise BadFactorChoice("A PIN has 4 to 6 numbers", "Type 4 to 6 numbers.")
        return "pin:" + pin
    picks = [value] if isinstance(value, str) else list(value)
    if len(picks) != PICTURES_TO_PICK or any(p not in PICTURE_NAMES for p in picks):
        raise BadFactorChoice("Pick three pictures", "Pick three pictures, one after another.")
    return "picture:" + ",".join(picks)


def hash_factor(kind: FactorKind, value: str | Sequence[str]) -> str:
    """argon2id hash of the factor (same parameters as passwords)."""
    return hasher.hash(secret_text(kind, value))


def matches(stored_hash: str | None, kind: FactorKind, value: str | Sequence[str]) -> bool:
    """Whether the value is the one hashed; a malformed value is simply wrong."""
    try:
        text = secret_text(kind, value)
    except BadFactorChoice:
        return False
    if not stored_hash:
        return False
    try:
        return hasher.verify(stored_hash, text)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def factor_row(db: Session, person: Person) -> BadgeFactor | None:
    return db.get(BadgeFactor, person.id)


def factor_is_set(db: Session, person: Person, kind: FactorKind) -> bool:
    row = factor_row(db, person)
    return row is not None and row.secret_hash(kind) is not None


def is_locked(db: Session, person: Person) -> bool:
    row = factor_row(db, person)
    return row is not None and row.locked_at is not None


def set_factor(db: Session, person: Person, kind: FactorKind, secret_hash: str, *,
               clock: Clock = utcnow) -> bool:
    """Store the factor the student chose (already hashed with hash_factor), only if none is set:
    False, and nothing changed, when one is (chosen a moment ago at another device)."""
    column = BadgeFactor.pin_hash if kind is FactorKind.pin else BadgeFactor.picture_hash
    now = clock()
    stored = db.execute(update(BadgeFactor)
                        .where(BadgeFactor.person_id == person.id, column.is_(None))
                        .values({column: secret_hash, BadgeFactor.updated_at: now})
                        .execution_options(synchronize_session=False)).rowcount
    if not stored:
        if db.scalar(select(BadgeFactor.person_id).where(BadgeFactor.person_id == person.id)):
            db.rollback()  # the row is there and holds one already
            return False
        db.add(BadgeFactor(person_id=person.id, updated_at=now, **{column.key: secret_hash}))
        try:
            db.flush()
        except IntegrityError:  # made at the same moment elsewhere
            db.rollback()
            return False
    audit.record("badge_factor_set", person=person, commit=False, data={"factor": kind.value})
    db.commit()
    db.expire_all()
    return True


def _unlocked_row(person: Person):
    """An UPDATE of the student's row that changes nothing once a guess has locked it."""
    return (update(BadgeFactor)
            .where(BadgeFactor.person_id == person.id, BadgeFactor.locked_at.is_(None))
            .execution_options(synchronize_session=False))


def _count_wrong_try(db: Session, person: Person, *, window_full: bool, lock_at: int,
                     now) -> Row | None:
    """Add one wrong try, locking at the `lock_at`th in a row, in one statement: two kiosks
    guessing at once cannot both read "4" and both get a try. None when a guess elsewhere has
    locked it. The count is kept however slowly the tries come: otherwise 4 every 15 minutes
    would try all 1,728 picture orders in under five days."""
    locks = true() if window_full else BadgeFactor.wrong_tries + 1 >= lock_at
    stamp = literal(now, BadgeFactor.locked_at.type)
    return db.execute(_unlocked_row(person).values(
        wrong_tries=BadgeFactor.wrong_tries + 1,
        locked_at=case((locks, stamp), else_=None),
        updated_at=case((locks, stamp), else_=BadgeFactor.updated_at),
    ).returning(BadgeFactor.wrong_tries, BadgeFactor.locked_at)).first()


def _answer_key(person: Person, text: str, key: bytes) -> str:
    """What a wrong answer is remembered by for a moment: a keyed hash, never the answer."""
    return f"{person.id}:" + hashlib.blake2b(text.encode(), key=key[:64], digest_size=16).hexdigest()


def check_factor(db: Session, limiter: RateLimiter, person: Person, badge_id: int,
                 kind: FactorKind, value: str | Sequence[str], *, secret_key: bytes,
                 clock: Clock = utcnow) -> None:
    """Accept the right factor; count a wrong one against the student and lock when too many.

    A malformed answer (BadFactorChoice: three digits, an empty field) is refused before
    anything is counted. The same wrong answer again within SAME_ANSWER_SECONDS is refused
    without being counted again. `secret_key` (the app's) keys what that is remembered by.
    """
    row = factor_row(db, person)
    if row is None or row.secret_hash(kind) is None:
        raise WrongFactor()
    if row.locked_at is not None:
        raise FactorLocked()
    text = secret_text(kind, value)
    key = str(person.id)
    if matches(row.secret_hash(kind), kind, value):
        started_again = db.execute(_unlocked_row(person).values(wrong_tries=0)
                                   .returning(BadgeFactor.person_id)).first()
        db.commit()
        if started_again is None:  # a wrong guess on another kiosk locked it meanwhile
            raise FactorLocked()
        limiter.clear(key)
        return
    if not limiter.first_in(SAME_ANSWER_SECONDS, _answer_key(person, text, secret_key)):
        raise WrongFactor()
    limiter.hit(key)
    counted = _count_wrong_try(db, person, window_full=not limiter.test(key),
                               lock_at=limiter.amount, now=clock())
    if counted is None:
        db.rollback()
        raise FactorLocked()
    if counted.locked_at is not None:
        audit.record("badge_factor_locked", person=person, commit=False,
                     data={"badge_id": badge_id, "factor": kind.value,
                           "wrong_tries": counted.wrong_tries})
    db.commit()
    if counted.locked_at is not None:
        raise FactorLocked()
    raise WrongFactor()


def unlock_factor(db: Session, limiter: RateLimiter, student: Person, *,
                  actor: Person | None = None, clock: Clock = utcnow) -> None:
    """A teacher lets the student try again (their PIN or pictures stay the same)."""
    if actor is not None and not may_manage_student(db, actor, student):
        raise NotPermitted()
    limiter.clear(str(student.id))
    row = factor_row(db, student)
    if row is not None and (row.locked_at is not None or row.wrong_tries):
        row.locked_at = None
        row.wrong_tries = 0
        row.updated_at = clock()
        audit.record("badge_factor_unlocked", person=student, actor=actor, commit=False)
        db.commit()


def reset_factor(db: Session, limiter: RateLimiter, student: Person, *,
                 actor: Person | None = None, clock: Clock = utcnow) -> None:
    """A teacher clears the student's PIN and pictures: they choose new ones at next sign-in."""
    if actor is not None and not may_manage_student(db, actor, student):
        raise NotPermitted()
    limiter.clear(str(student.id))
    row = factor_row(db, student)
    if row is not None:
        db.delete(row)
        audit.record("badge_factor_reset", person=student, actor=actor, commit=False)
        db.commit()
