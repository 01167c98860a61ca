"""Opt-outs: one person kept from one app whatever the grants say (a family's choice).

portal.access reads them in the one grant check that tiles, launches, ID tokens and userinfo
share, so an opt-out takes effect at the next request: the tile goes, a launch is refused, a code
issued before cannot be exchanged, and a token issued before reads no more userinfo.
"""
from __future__ import annotations

from datetime import datetime

import redis
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import audit
from portal.models import App, AppKind, AppOptOut, Person
from portal.names import by_name, by_word


def is_opted_out(db: Session, person: Person, app: App) -> bool:
    return db.get(AppOptOut, (person.id, app.id)) is not None


def opted_out_apps(db: Session, person: Person) -> list[App]:
    """The apps the person is opted out of, by name."""
    return by_word(db.scalars(select(App).join(AppOptOut, AppOptOut.app_id == App.id)
                              .where(AppOptOut.person_id == person.id)))


def opted_out_people(db: Session, district_id: int | None, app: App) -> list[Person]:
    """The district's people opted out of `app`, by name."""
    return by_name(db.scalars(select(Person).join(AppOptOut, AppOptOut.person_id == Person.id)
                              .where(AppOptOut.app_id == app.id, Person.district_id == district_id)))


def opt_out(db: Session, person: Person, app: App, *, actor: Person | None, now: datetime,
            client: redis.Redis | None = None) -> bool:
    """Keep `person` from `app`; False if they already were. With `client` (Redis), an OpenID
    app that listens for it is told to end the sessions the person has there now."""
    if is_opted_out(db, person, app):
        return False
    db.add(AppOptOut(person_id=person.id, app_id=app.id, at=now, by_id=actor.id if actor else None))
    try:
        db.flush()
    except IntegrityError:
        # Pressed twice at once (a double click, two admins): both found no opt-out, and the
        # other press wrote it. This one changes nothing and is not recorded.
        db.rollback()
        if is_opted_out(db, person, app):
            return False
        raise
    audit.record("app_opted_out", person=person, actor=actor, app=app, commit=False)
    db.commit()
    if client is not None and app.kind is AppKind.oidc and app.client_id:
        from portal.sso.oidc.backchannel import log_out_of_app
        try:
            log_out_of_app(client, person.id, app.client_id)
        except redis.RedisError:
            pass   # the opt-out holds (the grant check reads it); the app is not told now
    return True


def opt_in(db: Session, person: Person, app: App, *, actor: Person | None) -> bool:
    """Let the grants decide again; False if the person was not opted out."""
    # One DELETE that says what it deleted: pressed twice at once (a double click, two admins),
    # both presses found the opt-out, and the ORM's delete of a row the other press had just
    # deleted raised StaleDataError (a 500) at the flush. This one changes nothing, unrecorded.
    gone = db.execute(delete(AppOptOut).where(AppOptOut.person_id == person.id,
                                              AppOptOut.app_id == app.id))
    if not gone.rowcount:
        db.rollback()
        return False
    audit.record("app_opted_in", person=person, actor=actor, app=app, commit=False)
    db.commit()
    return True
