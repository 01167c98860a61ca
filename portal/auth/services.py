"""Sign-in logic, with what it needs passed in: database session, Redis, limiters."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone

import redis
from flask import current_app, g, session
from flask_login import login_user, logout_user
from flask_wtf.csrf import generate_csrf
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.auth.passwords import (
    MAX_LENGTH, hash_password, needs_rehash, rehash_password, verify_password,
)
from portal.errors import PortalError
from portal.models import Person, Role
from portal.models.roster import canonical_username, typeable_username
from portal.ratelimit import AddressLimiter, RateLimiter
from portal.redis_store import redis_said
from portal.sessions import end_sessions_for

log = logging.getLogger(__name__)


class InvalidCredentials(PortalError):
    status = 401
    title = "That username and password don't match"
    advice = "Check them and try again, or ask your teacher for help."


class AccountOnHold(PortalError):
    status = 403
    title = "This account is on hold"
    advice = "Ask your teacher or the school office: they can tell you what to do next."
    staff_advice = ("A district administrator placed the hold: ask them, or the district office, "
                    "what to do next.")


class TooManyFailedLogins(PortalError):
    status = 429
    title = "Too many tries"
    advice = "Wait a few minutes before you try again, or ask your teacher for help."


def normalize_username(username: str) -> str:
    """Usernames are stored lower-case and composed (the importer does the same), so lookups use
    the index."""
    return canonical_username(username.strip())[:255]


# Full-width Latin letters, digits and signs (U+FF01-FF5E) and the ideographic space: what a
# Chinese, Japanese or Korean input method types when it is left in full-width mode, as a child's
# often is. They look like the ordinary ones, and "ｔａｒｏ" is not "taro" to a database.
_FULL_WIDTH = {0xFF01 + i: 0x21 + i for i in range(0x5E)} | {0x3000: 0x20}


def narrow_username(username: str) -> str:
    """The username as typed, with full-width letters, digits and signs read as the ordinary
    ones, stored as normalize_username stores it. What a sign-in looks up when the name as typed
    is no one's, and what its tries are counted under: each mix of wide and narrow letters would
    otherwise be an account of its own to the per-account limit."""
    return normalize_username(username.translate(_FULL_WIDTH))


class LoginLimits:
    """The two sign-in limits: strict per account, generous per client address."""

    def __init__(self, client: redis.Redis, per_account: str, per_address: str):
        self.account = RateLimiter(client, per_account, scope="login-account")
        self.address = AddressLimiter(client, per_address, scope="login-address")

    @classmethod
    def for_app(cls) -> "LoginLimits":
        """The app's limits, built once per app (they hold only the shared connection pool)."""
        limits = current_app.extensions.get("login_limits")
        if limits is None:
            settings = current_app.config["SETTINGS"]
            limits = cls(current_app.extensions["redis"], settings.login_limit_per_account,
                         settings.login_limit_per_address)
            current_app.extensions["login_limits"] = limits
        return limits


_BY_USERNAME = select(Person).where(Person.username == bindparam("username"))


def check_password(db: Session, limits: LoginLimits, username: str, password: str,
                   address: str, *, clear_with: list[Callable],
                   take_back_with: list[Callable]) -> tuple[Person, int]:
    """Return the person if the password is right, with when that password was set (read with
    the hash it was checked against: give it to sign_in); count every failure, unknown names too.

    The strict per-account limit counts the attempt before the password is checked, in one step
    that also tests it, so guesses sent at once cannot all pass the test before any is counted;
    the right password then clears the account's count, queued on `clear_with` (the new session's
    commands to send with its save: no round trip of its own). An attempt that ends in the
    portal's own failure instead (the database or Redis away: the 503 page, where the session is
    not saved and the count not cleared) is taken back, queued on `take_back_with` (the session's
    if_failed): a teacher trying again and again through an outage must not find the account
    locked after it. A wrong password counts, whatever comes after. The generous per-address
    limit counts failures only (a school's sign-ins share an address): at most the requests
    already being checked can pass it at once.
    """
    name, counted = normalize_username(username), narrow_username(username)
    hit = limits.account.count(counted) if limits.address.test(address) else None
    if hit is None:
        raise TooManyFailedLogins()
    take_back = hit.take_back
    take_back_with.append(take_back)

    # A name with control characters (PostgreSQL cannot even compare a NUL) or longer than any
    # stored one, or an over-long password, is a failure like any other, without the lookup.
    readable = typeable_username(name) and len(username.strip()) <= 255 and len(password) <= MAX_LENGTH
    person = db.scalar(_BY_USERNAME, {"username": name}) if readable else None
    if person is None and readable and counted != name:
        # Typed in full-width letters: the name as a keyboard in its usual mode would type it (a
        # name the roster holds in full-width letters is found as typed, above).
        person = db.scalar(_BY_USERNAME, {"username": counted})
    ok = readable and verify_password(person.password_hash if person else None, password)
    if not ok or person is None or not person.enabled:
        take_back_with.remove(take_back)
        limits.address.hit(address)
        raise InvalidCredentials()
    if person.held_at is not None:
        # Said only to whoever knows the password: a stranger learns nothing of the hold (nor
        # of the account's role, which only chooses the words).
        raise AccountOnHold(advice=None if person.role is Role.student else AccountOnHold.staff_advice)

    clear_with.append(lambda pipe: limits.account.clear_in(pipe, counted))
    set_at = _password_set_at(person)
    if needs_rehash(person.password_hash):
        # Not hash_password: an old short password must still upgrade, not fail the sign-in.
        # Only while the hash is the one just checked: a teacher's reset committed meanwhile
        # must stand, not be overwritten with the old password's new hash.
        db.execute(update(Person)
                   .where(Person.id == person.id, Person.password_hash == person.password_hash)
                   .values(password_hash=rehash_password(password))
                   .execution_options(synchronize_session=False))
        db.commit()
    return person, set_at


def set_password(db: Session, client: redis.Redis, person: Person, password: str, *,
                 actor: Person | None = None) -> bool:
    """Give a person a new password and end every session they had (nothing changes when
    Redis cannot be reached: the old sessions must not outlive the old password). The audit
    log records that it changed, and who changed it (`actor`; None: the command line).

    Returns False (and logs it) when Redis failed after the commit, before the sessions ended
    (gone, or full and refusing writes): the new password stands, and whoever set it must hear
    it. A session begun with the old password is refused at its next request all the same
    (password_still_current); one begun otherwise (a badge's), and the apps signed in through
    any of them, last until they time out."""
    client.ping()
    person.password_hash = hash_password(password)
    person.password_changed_at = datetime.now(timezone.utc)
    audit.record("password_set", person=person, actor=actor, commit=False)
    db.commit()
    try:
        end_sessions_for(client, person.id)
    except redis.RedisError as e:
        log.warning("a new password was set, but Redis failed before the person's sessions "
                    "ended: %s", redis_said(e))
        return False
    return True


# Set beside a classroom device's own cookie when its browser is bound (that one is scoped to
# /kiosk/, so the sign-in page cannot see it): a password typed on a shared device then gets the
# kiosk's short idle time-out. Not a secret: forged, it only shortens one's own session.
SHARED_DEVICE_COOKIE = "portal_shared_device"


# A session begun with a password keeps when that password was set. set_password ends the
# sessions there are when it runs, but a sign-in with the old password may be between its check
# and its save just then: that session would outlive the password it was begun with. Every request
# loads the person anyway, so the session is refused there once the two differ.
PASSWORD_SET_AT = "password_set_at"


def _password_set_at(person: Person) -> int:
    """When the person's password was last set, in microseconds (0: not since records began)."""
    at = person.password_changed_at
    if at is None:
        return 0
    return int(at.timestamp() * 1_000_000)


def password_still_current(session_data, person: Person) -> bool:
    """Whether a session's person may stay signed in as far as their password goes: a session
    not begun with a password, or begun with the one they have now."""
    begun_with = session_data.get(PASSWORD_SET_AT)
    return begun_with is None or begun_with == _password_set_at(person)


def sign_in(person: Person, method: str, *, password_set_at: int | None = None) -> None:
    """Start a fresh session for the person (a new id: no session fixation). A password sign-in
    gives when that password was set, as check_password read it."""
    session.clear()
    session.rotate()
    login_user(person)
    session["auth_method"] = method
    if method == "password":
        session[PASSWORD_SET_AT] = (_password_set_at(person) if password_set_at is None
                                    else password_set_at)
    now = datetime.now(timezone.utc).timestamp()
    session["auth_time"] = int(now)
    # The same instant to the millisecond: "signed in after that request arrived" (SAML
    # ForceAuthn) must tell apart a sign-in and a request in the same second.
    session["auth_ms"] = int(now * 1000)
    # A new CSRF token for the new session, stored in the same write (the form built earlier
    # in this request cached the old one in g).
    g.pop("csrf_token", None)
    generate_csrf()
    audit.record("sign_in", person=person, data={"method": method})


def sign_out() -> None:
    """End the current session. The session is emptied first: logging out then has no one to
    load, so signing out works even while the database is away (a shared computer)."""
    session.clear()
    logout_user()
