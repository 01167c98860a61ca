"""The browser side of a badge sign-in: start the session, or first ask for the second factor.

A badge session is short-lived (PORTAL_KIOSK_IDLE_MINUTES idle time-out) and records its method
("badge", "badge+pin", "badge+picture") for OIDC amr and SAML AuthnContext. On a kiosk it also
records the device, and becomes that device's current session, which the next scan ends.
"""
from __future__ import annotations

import secrets
import time

from flask import current_app, request, session, url_for
from sqlalchemy.orm import Session

from portal.auth import destination
from portal.auth.services import sign_in
from portal.cookies import read_cookie, set_cookie
from portal.badges.expiry import utcnow
from portal.badges.factors import is_locked
from portal.badges.sessions import mark_device_session, watch_badge
from portal.badges.signin import Accepted, BadgeLimits, check_badge, find_badge
from portal.errors import PortalError
from portal.models import Badge, FactorKind, KioskDevice, Person

PENDING = "badge_pending"
PENDING_SECONDS = 300  # from the scan to the last PIN digit or picture
# A session begun at the in-browser scanner (/badge) keeps its school's sourced id here: signing
# out of it, or its tiles page timing out, goes back to that scanner, ready for the next child.
SCANNER_SCHOOL = "scanner_school"
# The same, in a cookie that outlives the session (it says nothing but a school's sourced id, and
# only chooses where this browser is sent): a scanner device whose child's session ran out finds
# the scanner again at / or /badges/home, not the password form.
SCANNER_COOKIE = "portal_scanner"
SCANNER_COOKIE_SECONDS = 30 * 24 * 3600
# The tab a badge session's tiles first opened in (static/js/this-tab.js): a random mark, kept in
# the session and in that tab's sessionStorage. A tiles page opened in any other tab (the last
# child closed theirs; the next child opened the portal again) signs out before it shows anyone's
# name or tiles. Which page is the first is kept in Redis beside the session (TAB_CLAIMED + the
# mark), not in it: one SET NX, where saving the session again cost six commands, and of two pages
# made at once only one claims.
TAB_MARK = "tab_mark"
TAB_CLAIMED = "portal:tab-claimed:"


def app_clock():
    """The app's clock (tests may set PORTAL_CLOCK to a callable returning aware UTC)."""
    return current_app.config.get("PORTAL_CLOCK") or utcnow


def now():
    return app_clock()()


def settings():
    return current_app.config["SETTINGS"]


def redis_client():
    return current_app.extensions["redis"]


def posted_fields(example: str) -> dict:
    """A staff page's or script's fields: the form, or a JSON object (an empty body is none).

    JSON that is not an object, or not JSON at all, is refused in plain words (400), the same on
    every route, rather than read as no fields and refused later for what is missing."""
    if not request.is_json:
        return request.form
    if not request.get_data():
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise PortalError("Send the fields as a JSON object", f"For example {example}.")
    return body


def limits() -> BadgeLimits:
    """The app's badge limits, built once per app (they hold only the shared pool)."""
    found = current_app.extensions.get("badge_limits")
    if found is None:
        found = BadgeLimits.from_settings(redis_client(), settings())
        current_app.extensions["badge_limits"] = found
    return found


def finish_sign_in(person: Person, badge: Badge, device_id: int | None, method: str,
                   scanner_school: str | None = None) -> None:
    """Start the student's badge session in this browser (`scanner_school`: begun at the
    in-browser scanner of that school)."""
    idle = settings().kiosk_idle_minutes * 60
    # Read before sign_in: its audit record commits, and reading them after would reload both.
    person_id, badge_id, expires_at = person.id, badge.id, badge.expires_at
    sign_in(person, method=method)
    session["_idle"] = idle
    session["badge_id"] = badge_id
    session[TAB_MARK] = secrets.token_urlsafe(12)
    # A badge session ends when its badge does (a temporary badge lasts 1 to 12 hours; a card
    # ends with the school year), whatever the sessions' usual longest life.
    left = int((expires_at - now()).total_seconds())
    session["_max"] = max(1, min(left, settings().session_max_hours * 3600))
    watch_badge(session, badge_id, person_id, redis_client(), device_id=device_id)
    if scanner_school is not None:
        session[SCANNER_SCHOOL] = scanner_school
    if device_id is not None:
        session["kiosk_device"] = device_id
        mark_device_session(session, device_id, person_id, settings().session_max_hours * 3600)


def claim_tab(mark: str) -> bool:
    """True for the one page that claims the sign-in's tab: the first to ask. Kept as long as
    the session can last."""
    seconds = max(1, current_app.session_interface.max_seconds(current_app, session))
    return bool(redis_client().set(TAB_CLAIMED + mark, 1, nx=True, ex=seconds))


def landing(going_to: str | None) -> str:
    """Where a badge sign-in's browser goes once signed in: the tiles, whose first page claims
    the tab (TAB_MARK); or, on the way to an app that asked for the sign-in, a page that claims
    the tab first (/badges/claim), so that the tiles opened later claim nothing for another tab."""
    return url_for("badges.claim", next=going_to) if going_to else url_for("badges.home")


def continue_after_badge(db: Session, accepted: Accepted) -> str:
    """Sign in, or set up the second-factor step; return where the browser goes next: the
    student's tiles, or where this browser was going when it asked for a sign-in (an app that
    wanted the student to sign in again, see portal.auth.destination)."""
    person, badge = accepted.person, accepted.badge
    device_id = accepted.device.id if accepted.device else None
    scanner_school = None if accepted.device else badge.school.sourced_id
    factor = accepted.policy.factor_for(person)
    going_to = destination.take()
    if factor is None:
        finish_sign_in(person, badge, device_id, "badge", scanner_school)
        return landing(going_to)
    session.clear()
    session.rotate()
    if is_locked(db, person):
        return url_for("badges.locked", school=scanner_school)
    session[PENDING] = {"person_id": person.id, "badge_id": badge.id, "device_id": device_id,
                        "factor": factor.value, "exp": time.time() + PENDING_SECONDS,
                        "next": going_to, "scanner_school": scanner_school}
    return url_for("badges.second_factor")


def pending_sign_in(db: Session) -> tuple[Person, Badge, dict] | None:
    """The badge sign-in waiting for its second factor in this browser, if still good."""
    data = session.get(PENDING)
    if not isinstance(data, dict) or time.time() >= data.get("exp", 0):
        return None
    found = find_badge(db, badge_id=data["badge_id"])
    badge = found.badge
    if badge is None or badge.person_id != data["person_id"]:
        return None
    device = db.get(KioskDevice, data["device_id"]) if data.get("device_id") else None
    if data.get("device_id") and (device is None or device.revoked_at is not None):
        return None
    # From the browser scanner (no device): its school must still allow it, from this network.
    browser = not data.get("device_id")
    if check_badge(found, now(), device=device, browser=browser,
                   address=request.remote_addr if browser else None) is not None:
        return None
    # The school may have changed its policy since the scan.
    if found.policy.factor_for(badge.person) is not FactorKind(data["factor"]):
        return None
    return badge.person, badge, data


def scanner_school_of_browser() -> str | None:
    """The school whose in-browser scanner this browser last signed a child in at, if any."""
    value = read_cookie(SCANNER_COOKIE)
    return value if value and len(value) <= 255 and value.isprintable() else None


def remember_scanner(response, scanner_school: str) -> None:
    set_cookie(response, SCANNER_COOKIE, scanner_school, max_age=SCANNER_COOKIE_SECONDS)


def scanner_url(scanner_school: str | None) -> str | None:
    """Where a child on this scanner device scans their badge again (None: not a scanner's)."""
    return url_for("badges.scanner", school=scanner_school) if scanner_school else None


def scanner_of_browser() -> str | None:
    """The scanner this browser last signed a child in at (None: it never did)."""
    return scanner_url(scanner_school_of_browser())
