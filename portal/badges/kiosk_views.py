"""Kiosk routes: pairing and enrollment, the device API (Bearer credential, JSON only, exempt
from CSRF because no browser cookie authenticates it), the browser binding and the hand-off."""
from __future__ import annotations

from datetime import timedelta

from flask import (
    Blueprint, abort, jsonify, make_response, redirect, render_template, request, session,
)
from flask_login import current_user

from portal.addresses import portal_address, public_url
from portal.auth.roles import role_required
from portal.auth.services import SHARED_DEVICE_COOKIE
from portal.badges import flow
from portal.badges.kiosks import (
    BIND_SECONDS, KioskNotPermitted, PAIR_SECONDS, PairingFailed, ask_to_bind_again,
    authenticate_device, create_pairing_code, device_for_browser, enroll_device,
    finish_browser_binding, list_devices, needs_binding, revoke_device, start_browser_binding,
)
from portal.badges.permissions import STAFF_ROLES
from portal.badges.sessions import end_device_session
from portal.badges.signin import (
    HANDOFF_SECONDS, BadgeRejected, BrowserNotBound, Handoff, HandoffInvalid, TooManyScans,
    accept_handoff, cancel_handoff, claim_scan, is_scan_number, owe_saml_logout, redeem_badge,
    restart_scan_numbers, start_handoff, take_handoff,
)
from portal.cookies import read_cookie, set_cookie
from portal.db import db, parse_id
from portal.errors import error_page, retry_soon, wants_json
from portal.extensions import csrf
from portal.models import KioskDevice, School
from portal.ratelimit import AddressLimiter
from portal.sso.saml.logout import Participant, participants_in
from portal.teacher.forms import answer

bp = Blueprint("kiosk", __name__)

DEVICE_COOKIE = "portal_kiosk"
DEVICE_COOKIE_PATH = "/kiosk/"
DEVICE_COOKIE_AGE = timedelta(days=365)
# The one answer to every refused badge, whatever the reason.
REFUSED = {"error": BadgeRejected.title, "advice": BadgeRejected.advice}
# A scan from a device whose browser is not bound (never, or no longer: see kiosks.py): the
# badge is not looked at; the device binds its browser again, then sends the badge again.
BIND_AGAIN = {"error": "The classroom browser is not set up",
              "advice": "Bind it again (POST /kiosk/bind, open the link), then scan again."}
# A scan numbered before one the device already sent (the kiosk gave up on it): nothing done.
# A kiosk that hears it anyway (two programs on one credential) binds again, which starts its
# numbers over.
OUT_OF_ORDER = {"error": "A newer scan from this device came first",
                "advice": "Bind the browser again (POST /kiosk/bind), then scan again."}


def _api_error(status: int, error: str, advice: str, **headers):
    response = make_response(jsonify(error=error, advice=advice), status)
    response.headers.update(headers)
    return response


def _device_api(view):
    """JSON in, JSON out, and a Bearer credential of an enrolled, unrevoked device."""
    from functools import wraps

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not request.is_json:
            return _api_error(415, "Send JSON", "Use Content-Type: application/json.")
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        device = None
        if scheme.lower() == "bearer":
            device = authenticate_device(db.session, credential.strip(), clock=flow.app_clock())
        if device is None:
            return _api_error(401, "This device is not enrolled", "Enroll it with a pairing code.",
                              **{"WWW-Authenticate": 'Bearer realm="kiosk"'})
        return view(device, *args, **kwargs)

    return wrapped


def _single_use(status: int = 200, **fields):
    """A JSON answer carrying a credential or a one-time link: no cache may keep it."""
    response = make_response(jsonify(**fields), status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/kiosk/pair")
@role_required(*STAFF_ROLES)
def pair():
    """A teacher or admin asks for a pairing code for a new device of their school."""
    form = flow.posted_fields('{"school": 4}')
    school_id = parse_id(str(form.get("school", "")))
    school = db.session.get(School, school_id) if school_id is not None else None
    if school is None:
        abort(403)
    try:
        pairing = create_pairing_code(db.session, flow.redis_client(), school, actor=current_user,
                                      name=str(form.get("name", "")))
    except KioskNotPermitted:
        abort(403)
    # A code that enrolls a device for ten minutes: no cache may keep it.
    if wants_json():
        response = jsonify(code=pairing.code, expires_in=PAIR_SECONDS, school=school.name)
    else:
        response = make_response(render_template("badges/pairing.html", code=pairing.code,
                                                 school=school, minutes=PAIR_SECONDS // 60,
                                                 portal_address=portal_address()))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/kiosk/enroll")
@csrf.exempt
@retry_soon
def enroll():
    """A device trades its pairing code for its credential (once)."""
    if not request.is_json:
        return _api_error(415, "Send JSON", "Use Content-Type: application/json.")
    address = request.remote_addr or "unknown"
    settings = flow.settings()
    limiter = AddressLimiter(flow.redis_client(), settings.kiosk_enroll_limit_per_address,
                             scope="kiosk-enroll")
    if not limiter.hit(address):
        return _api_error(429, "Too many tries", "Wait ten minutes and try again.",
                          **{"Retry-After": "600"})
    body = request.get_json(silent=True)
    code = body.get("code") if isinstance(body, dict) else None
    name = body.get("name") if isinstance(body, dict) else None
    try:
        if not isinstance(code, str):
            raise PairingFailed()
        enrolled = enroll_device(db.session, flow.redis_client(), code,
                                 name=name if isinstance(name, str) else None,
                                 clock=flow.app_clock())
    except PairingFailed as e:
        return _api_error(400, e.title, e.advice)
    device = enrolled.device
    return _single_use(201, device_id=device.id, name=device.name, school=device.school.name,
                       credential=enrolled.credential)


@bp.post("/kiosk/bind")
@csrf.exempt
@retry_soon
@_device_api
def bind(device: KioskDevice):
    """The device asks for a one-time URL that binds its browser (open it right away)."""
    code = start_browser_binding(flow.redis_client(), device)
    restart_scan_numbers(flow.redis_client(), device.id)
    return _single_use(bind_url=public_url("kiosk.bind_browser", code=code),
                       expires_in=BIND_SECONDS)


@bp.post("/kiosk/browser")
@csrf.exempt
@retry_soon
@_device_api
def browser_state(device: KioskDevice):
    """Whether the device's browser must be bound again. The kiosk asks when the badge that just
    signed in is held up again (it does not send that badge again for a while): its hand-off may
    have been opened in a browser that lost its binding, which only the portal saw."""
    return jsonify(bind_again=needs_binding(flow.redis_client(), device))


@bp.get("/kiosk/bind/<code>")
def bind_browser(code: str):
    """The device's browser opens its bind URL and receives the device cookie."""
    cookie = finish_browser_binding(db.session, flow.redis_client(), code)
    if cookie is None:
        return error_page(403, "That set-up link has run out",
                          "Scan a badge at the classroom device: it sets this browser up again. "
                          "If it does not, ask your teacher.")
    device = db.session.get(KioskDevice, int(cookie.partition(".")[0]))
    response = make_response(render_template("badges/bound.html", device=device))
    age = int(DEVICE_COOKIE_AGE.total_seconds())
    set_cookie(response, DEVICE_COOKIE, cookie, max_age=age, path=DEVICE_COOKIE_PATH)
    set_cookie(response, SHARED_DEVICE_COOKIE, "1", max_age=age)
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@bp.post("/kiosk/badge")
@csrf.exempt
@retry_soon
@_device_api
def badge(device: KioskDevice):
    """A scan: the token (and the kiosk's number for the scan) in, a 30-second hand-off URL for
    this device's browser out."""
    body = request.get_json(silent=True)
    if (not isinstance(body, dict) or set(body) - {"seq"} != {"token"}
            or ("seq" in body and not is_scan_number(body["seq"]))):
        return _api_error(400, "Send only the token", 'The body is {"token": "...", "seq": 1}.')
    store, seq = flow.redis_client(), body.get("seq")
    if needs_binding(store, device):
        return make_response(jsonify(BIND_AGAIN), 409)
    if seq is not None and not claim_scan(store, device.id, seq):
        return make_response(jsonify(OUT_OF_ORDER), 409)
    try:
        accepted = redeem_badge(db.session, flow.limits(), body["token"], device=device,
                                clock=flow.app_clock(), commit=False,
                                take_back_with=session.if_failed)
    except TooManyScans as e:
        _sign_out(store, device.id)
        return _api_error(429, e.title, e.advice, **{"Retry-After": str(e.retry_after)})
    except BadgeRejected:
        _sign_out(store, device.id)
        return make_response(jsonify(REFUSED), 403)
    # What the hand-off carries, read before the commit expires it.
    person_id, badge_id, device_id = accepted.person.id, accepted.badge.id, device.id
    # The badge's last use is committed before Redis changes: a scan that fails on the database
    # (away, or its write lock held past the busy timeout: the 503 page) leaves the child at
    # this device signed in, and the hand-off waiting for the browser still there. A badge voided
    # or a device revoked meanwhile is caught whatever the order: opening the hand-off checks
    # both again, and the new session's save looks for their marks (watch_badge).
    db.session.commit()
    # A new student at this device: whoever was signed in on it is signed out now. The SAML
    # apps that session signed in to hear of it in the browser, on the way to the new session.
    ended = end_device_session(store, device_id)
    saml_logout = tuple(p.as_json() for p in participants_in(ended)) if ended else ()
    code = start_handoff(store, Handoff(person_id, badge_id, device_id, saml_logout), seq=seq)
    if code is None:
        return make_response(jsonify(OUT_OF_ORDER), 409)
    return _single_use(handoff_url=public_url("kiosk.handoff", code=code),
                       expires_in=HANDOFF_SECONDS)


def _sign_out(store, device_id: int) -> None:
    """A refused scan (any reason, the device's own limit too) signs out whoever was signed in on
    the device, as an accepted one does: a child whose card did not work must not be left at the
    last child's tiles, and the answer, the same for every refusal, tells nothing about the token.
    Called after the database's part of the scan (a voided card's audit record): a scan that
    fails on the database (the 503 page) leaves the device as it was. A hand-off not yet opened
    is cancelled, and the SAML apps the ended session signed in to are owed a sign-out at the
    next hand-off opened in the device's browser."""
    ended = end_device_session(store, device_id)
    pipe = store.pipeline()
    if ended:
        owe_saml_logout(pipe, device_id, [p.as_json() for p in participants_in(ended)])
    cancel_handoff(pipe, device_id)
    pipe.execute()


@bp.get("/kiosk/handoff/<code>")
def handoff(code: str):
    """The device's browser finishes the sign-in: only with the device cookie, only once.
    Opened in a browser that is not the device's (it lost its binding, or the link was carried
    elsewhere), the page says so, and the device is asked to bind its browser again."""
    client = flow.redis_client()
    browser_device = device_for_browser(db.session, read_cookie(DEVICE_COOKIE, DEVICE_COOKIE_PATH))
    ticket = None
    try:
        ticket = take_handoff(client, code)
        accepted = accept_handoff(db.session, ticket, browser_device, clock=flow.app_clock())
    except HandoffInvalid as e:
        refused = e
        if ticket is not None:
            ticket.give_back(client)
        device_id = ticket.device_id if ticket is not None else None
        if browser_device is None or (device_id is not None and browser_device.id != device_id):
            if device_id is not None:
                ask_to_bind_again(client, device_id)
            refused = BrowserNotBound()
        response = error_page(refused.status, refused.title, refused.advice)
    else:
        going_to = flow.continue_after_badge(db.session, accepted)
        if ticket.saml_logout:
            from portal.sso.saml import slo
            # Single Logout of the last child's SAML apps, then on to this child's page.
            response = slo.start([p for p in map(Participant.from_json, ticket.saml_logout) if p],
                                 then=going_to)
        else:
            response = redirect(going_to)
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/kiosk/devices")
@role_required(*STAFF_ROLES)
def devices():
    """The school's devices (admins of the school)."""
    school_id = parse_id(request.args.get("school", ""))
    school = db.session.get(School, school_id) if school_id is not None else None
    if school is None:
        abort(403)
    try:
        found = list_devices(db.session, school, actor=current_user)
    except KioskNotPermitted:
        abort(403)
    return jsonify(school=school.name, devices=[describe_device(d) for d in found])


@bp.post("/kiosk/devices/<int:device_id>/revoke")
@role_required(*STAFF_ROLES)
def revoke(device_id: int):
    """An admin of the device's school stops it from signing anyone in."""
    device = db.session.get(KioskDevice, device_id)
    if device is None:
        abort(403)
    try:
        revoke_device(db.session, flow.redis_client(), device, actor=current_user,
                      clock=flow.app_clock())
    except KioskNotPermitted:
        abort(403)
    return answer(f"{device.name} can no longer sign anyone in.", **describe_device(device))


def describe_device(device: KioskDevice) -> dict:
    def when(value):
        return value.isoformat() if value else None
    return {"id": device.id, "name": device.name, "school_id": device.school_id,
            "created_at": when(device.created_at), "last_seen_at": when(device.last_seen_at),
            "revoked_at": when(device.revoked_at), "browser_bound": bool(device.browser_key_hash)}
