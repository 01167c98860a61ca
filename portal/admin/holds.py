"""Security holds: a district admin stops one account at once (a password that got out, a badge
that went missing, an account being misused) until the hold is lifted.

While a hold stands the person cannot sign in (password or badge), every session they had is
over, and no app opens for them or reads their data (portal.access and the session loader read
Person.held_at with the row they load anyway). A roster import never lifts it: the roster says
who is enrolled, a hold says the account is not safe to use.
"""
from __future__ import annotations

from datetime import datetime

import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.admin.services import AdminError, one_line
from portal.local_time import local
from portal.models import Person
from portal.sessions import end_sessions_for

MAX_REASON = 200


def held_people(db: Session, district_id: int | None) -> list[Person]:
    """The district's accounts on hold, the longest-held first."""
    return list(db.scalars(select(Person).where(Person.district_id == district_id, Person.held_at.is_not(None))
                           .order_by(Person.held_at, Person.id)))


def place_hold(db: Session, client: redis.Redis, person: Person, *, actor: Person | None, reason: str,
               now: datetime) -> int | None:
    """Put `person` on hold and end their sessions; return how many sessions ended (None: Redis
    could not be reached, so none could be ended yet).

    The hold is what stops them: their sessions stop working the moment it is committed, even
    when Redis is down and the stored sessions cannot be deleted yet (lifting the hold ends
    them then, so that they do not come back with it).
    """
    reason = one_line(reason, "reason", MAX_REASON)
    if actor is not None and actor.id == person.id:
        raise AdminError("you cannot put your own account on hold")
    if person.held_at is not None:
        raise _already_held(person)
    # Only while not held, in the same statement: two admins at the same moment both found the
    # account not held, and the second replaced the first's reason and was recorded again.
    placed = db.execute(update(Person).where(Person.id == person.id, Person.held_at.is_(None))
                        .values(held_at=now, hold_reason=reason))
    if placed.rowcount != 1:
        db.rollback()
        db.refresh(person)
        raise _already_held(person)
    audit.record("hold_placed", person=person, actor=actor, commit=False)
    db.commit()
    try:
        return end_sessions_for(client, person.id)
    except redis.RedisError:
        return None   # the hold already refuses them; lifting it ends them


def _not_held(person: Person) -> AdminError:
    return AdminError(f"{person.username} is not on hold")


def _already_held(person: Person) -> AdminError:
    return AdminError(f"{person.username} has been on hold since {local(person.held_at):%b %-d, %Y}")


def lift_hold(db: Session, client: redis.Redis, person: Person, *, actor: Person | None) -> None:
    """Lift the hold: the person may sign in again (with the password or badge they had). Every
    session from before the hold ends first: one that Redis kept while the hold was placed (it
    could not be reached then) must not come back to life now."""
    if person.held_at is None:
        raise _not_held(person)
    try:
        end_sessions_for(client, person.id)
    except redis.RedisError:
        raise AdminError("the session store cannot be reached, so the sessions from before the "
                         "hold cannot be ended: the hold stays; try again in a minute") from None
    # Only while held, in the same statement: two admins lifting it at the same moment (or a
    # double click) both found it held, and both were recorded as lifting it.
    lifted = db.execute(update(Person).where(Person.id == person.id, Person.held_at.is_not(None))
                        .values(held_at=None, hold_reason=""))
    if lifted.rowcount != 1:
        db.rollback()
        raise _not_held(person)
    audit.record("hold_lifted", person=person, actor=actor, commit=False)
    db.commit()
