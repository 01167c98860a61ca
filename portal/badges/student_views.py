"""Student pages of a badge sign-in: the second factor, the locked page, the tiles after a badge
("Not you? Sign out"), and the endpoint the in-browser scanner posts a token to."""
from __future__ import annotations

import hmac

import redis
from flask import (current_app, has_request_context, jsonify, make_response, redirect, render_template, request,
                   session, url_for)
from flask_login import current_user
from sqlalchemy import select

from portal import access
from portal.auth.roles import signed_in
from portal.auth.destination import local_path
from portal.badges import flow
from portal.badges.factors import (
    PICTURE_NAMES, PICTURES, PICTURES_TO_PICK, BadFactorChoice, FactorLocked, WrongFactor,
    check_factor, factor_is_set, hash_factor, matches, set_factor,
)
from portal.badges.sessions import is_badge_session
from portal.badges.signin import BadgeRejected, TooManyScans, redeem_badge
from portal.badges.views import bp
from portal.db import db
from portal.errors import error_page, wants_json
from portal.models import FactorKind, School

METHODS = {FactorKind.pin: "badge+pin", FactorKind.picture: "badge+picture"}


@bp.get("/badges/home")
@signed_in
def home():
    """The student's tiles after a badge sign-in, with their name and "Not you? Sign out"."""
    if not is_badge_session(session):
        return redirect(url_for("launchpad.tiles"))
    return badge_tiles()


def badge_tiles():
    """The tiles page of a badge session (here, and at /): a big "Not you? Sign out" and a
    page that asks "Are you still here?" when no one has touched it for a while.

    The first tiles page after the sign-in claims its tab (static/js/this-tab.js); any other tab
    that opens them later, before showing them, signs out: on a shared device that is the next
    child, who opened the portal again after the last child closed their tab."""
    apps = access.apps_for(db.session, current_user)
    return render_template("badges/home.html", apps=apps, tab_first=_first_page(), tab_watch=True)


@bp.app_context_processor
def badge_tab() -> dict:
    """Every page of a badge sign-in checks its tab (templates/base.html): a 404 typed in the next
    child's new tab must not show the last child's name in the bar. Not the page that names no
    one: an older tab goes there when a newer tab signs a child in. A session from before the
    marks has none and is not checked."""
    if not has_request_context() or not is_badge_session(session) or request.endpoint == "badges.next_child":
        return {}
    return {"badge_tab_mark": session.get(flow.TAB_MARK)}


def _first_page() -> bool:
    """Whether this page claims the sign-in's tab (flow.claim_tab). Asked once the page's data is
    read, so that a page that failed claims nothing and the child's retry still can; and only for
    a GET (a HEAD's page never reaches a tab)."""
    mark = session.get(flow.TAB_MARK)
    return mark is not None and request.method == "GET" and flow.claim_tab(mark)


@bp.get("/badges/claim")
@signed_in
def claim():
    """A badge sign-in on its way to an app that asked for it (flow.landing): claim the tab
    (static/js/this-tab.js), then go on to `?next=`. It names no one. A tab that did not see the
    sign-in signs out here instead, as on the tiles."""
    going_to = local_path(request.args.get("next")) or url_for("badges.home")
    if not is_badge_session(session) or session.get(flow.TAB_MARK) is None:
        return redirect(going_to)
    return render_template("badges/claim.html", tab_first=_first_page(), tab_next=going_to,
                           names_no_one=True)


@bp.get("/badges/alive")
def alive():
    """Whether the badge sign-in a tiles page shows (`?mark=`, its flow.TAB_MARK) is still this
    browser's session: {"here": true or false}. A tiles page asks every few seconds and leaves
    for the page that names no one once it is not (a refused scan on the kiosk, a teacher's
    reset, the server's limit, a sign-out in another tab). Read without sliding the session's
    idle time-out (portal.sessions.SESSIONLESS_PATHS): asking does not keep a sign-in on."""
    mark = request.args.get("mark", "")
    try:
        data = current_app.session_interface.peek(current_app, request)
    except redis.RedisError:
        return jsonify(here=None), 503          # not known: the page stays as it is
    here = bool(mark) and data is not None and is_badge_session(data) and \
        hmac.compare_digest(str(data.get(flow.TAB_MARK, "")).encode(), mark.encode())
    response = jsonify(here=here)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/badges/next")
def next_child():
    """Where the last child's tab on a shared device goes once the next child signs in there
    (static/js/one-child.js), and a kiosk's browser once its child signs out: it names no one.
    In a browser that signs children in at a scanner, it has the big "Scan my badge" back to it."""
    return render_template("badges/next.html", scan_url=flow.scanner_of_browser(), names_no_one=True)


def _scanner_school_named() -> str | None:
    """The school `?school=` names, if it is one (the scanner page takes the same)."""
    sourced_id = request.args.get("school")
    if not sourced_id:
        return None
    found = db.session.scalar(select(School.sourced_id).where(School.sourced_id == sourced_id[:255]))
    return found


@bp.get("/badges/locked")
def locked():
    """Too many wrong PINs or pictures. From the in-browser scanner (`?school=`), a way back to
    it: the next child scans there."""
    return render_template("badges/locked.html",
                           scan_url=flow.scanner_url(_scanner_school_named())), 403


# A second press of the picture just pressed, this soon after the page it opened was made, is
# the rest of a double-click or double-tap, not a choice: young children press everything twice.
# Half a second: a double-click's second press comes within it (500 ms is the usual limit), and
# a child who means the same picture again (cat, cat, dog) sees the page change first.
DOUBLE_PRESS_MS = 500


def _now_ms() -> int:
    return int(flow.now().timestamp() * 1000)


def _pressed() -> str | None:
    """The picture this request pressed, if any."""
    pick = request.form.get("pick")
    return pick if pick in PICTURE_NAMES else None


def _double_press() -> bool:
    """Whether this press repeats the press that made the page it came from, within moments.

    The page carries which picture made it and when ("pressed"), and, where its script ran,
    how long it had been on the screen ("shown_ms"): on a slow Chromebook a page reaches the
    screen well after it was made. A forged value can only make the portal ignore a press of
    the one who forged it."""
    name, _, made = request.form.get("pressed", "").partition(":")
    if not made.isdigit() or name != _pressed():
        return False
    shown = request.form.get("shown_ms", "")
    if shown.isascii() and shown.isdigit() and len(shown) < 10:
        return int(shown) < DOUBLE_PRESS_MS
    return 0 <= _now_ms() - int(made) < DOUBLE_PRESS_MS


def _page(kind: FactorKind, mode: str, *, error=None, picked=(), status=200):
    template = "badges/pin.html" if kind is FactorKind.pin else "badges/pictures.html"
    pressed = _pressed() if request.method == "POST" else None
    html = render_template(template, mode=mode, error=error, picked=list(picked),
                           pictures=PICTURES, to_pick=PICTURES_TO_PICK,
                           pressed=pressed and f"{pressed}:{_now_ms()}", focus=pressed)
    return make_response(html, status)


def _entered(kind: FactorKind) -> tuple[list[str] | str | None, list[str]]:
    """What was entered, once complete (PIN, or three pictures), and the pictures so far."""
    if kind is FactorKind.pin:
        return request.form.get("pin", ""), []
    picked = [p for p in request.form.getlist("picked") if p in PICTURE_NAMES][:PICTURES_TO_PICK]
    pick = request.form.get("pick")
    if pick in PICTURE_NAMES and len(picked) < PICTURES_TO_PICK:
        picked.append(pick)
    if request.form.get("restart") or len(picked) < PICTURES_TO_PICK:
        return None, [] if request.form.get("restart") else picked
    return picked, picked


@bp.route("/badges/check", methods=["GET", "POST"])
def second_factor():
    """The PIN or picture step after a badge; the first time, the student chooses it (twice)."""
    pending = flow.pending_sign_in(db.session)
    if pending is None:
        left = session.pop(flow.PENDING, None)
        scan_url = flow.scanner_url(left.get("scanner_school") if isinstance(left, dict) else None)
        if scan_url and not wants_json():
            # Begun at the in-browser scanner: back to it (the password form is no way on).
            return make_response(render_template(
                "badges/ran_out.html", status=403, title="That sign-in has run out",
                advice="Scan your badge again.", scan_url=scan_url), 403)
        return error_page(403, "That sign-in has run out", "Scan your badge again.")
    person, badge, data = pending
    kind = FactorKind(data["factor"])
    choosing = not factor_is_set(db.session, person, kind)
    if not choosing and data.pop("new_hash", None):
        # This child was choosing, and the same badge chose one at another device a moment ago:
        # that one stands. Ask for it, without counting what was typed here as a wrong try.
        session[flow.PENDING] = data
        return _page(kind, "enter", status=409, error=BadFactorChoice(
            "One was just chosen on another device",
            "Type that one. If it wasn't you, ask your teacher to reset it."))
    mode = ("confirm" if data.get("new_hash") else "choose") if choosing else "enter"
    if request.method == "GET":
        return _page(kind, mode)

    if kind is FactorKind.picture and _double_press():
        # 204: the browser stays on the page it shows (its progress, or what went wrong).
        return make_response("", 204)
    value, picked = _entered(kind)
    if value is None:
        return _page(kind, mode, picked=picked)
    if mode == "choose":
        try:
            data["new_hash"] = hash_factor(kind, value)
        except BadFactorChoice as e:
            return _page(kind, mode, error=e, status=400)
        session[flow.PENDING] = data
        return _page(kind, "confirm")
    if mode == "confirm":
        if not matches(data.get("new_hash"), kind, value):
            data.pop("new_hash", None)
            session[flow.PENDING] = data
            return _page(kind, "choose", status=400, error=BadFactorChoice(
                "Those didn't match", "Choose again, then do the same once more."))
        if not set_factor(db.session, person, kind, data["new_hash"], clock=flow.app_clock()):
            # Chosen a moment ago at another device: that one stands, and it is asked for.
            data.pop("new_hash", None)
            session[flow.PENDING] = data
            return redirect(url_for("badges.second_factor"))
        # Only the badge proved who this is (amr, AuthnContext): the PIN or pictures were
        # chosen now, not checked. The next sign-in asks for them.
        method = "badge"
    else:
        try:
            check_factor(db.session, flow.limits().factor, person, badge.id, kind, value,
                         secret_key=flow.settings().secret_key.encode(), clock=flow.app_clock())
        except BadFactorChoice as e:  # an empty field, three digits: said so, not counted
            return _page(kind, mode, error=e, status=400)
        except WrongFactor as e:
            return _page(kind, mode, error=e, status=e.status)
        except FactorLocked:
            session.pop(flow.PENDING, None)
            return redirect(url_for("badges.locked", school=data.get("scanner_school")))
        method = METHODS[kind]
    flow.finish_sign_in(person, badge, data.get("device_id"), method, data.get("scanner_school"))
    return redirect(flow.landing(local_path(data.get("next"))))


@bp.post("/badge/scan")
def browser_scan():
    """The in-browser scanner posts {"token": ...} (with its CSRF header) and goes where told.

    Works only for schools whose policy allows the browser scanner; every refusal is the same.
    """
    if not request.is_json:
        return make_response(jsonify(error="Send JSON", advice="Use application/json."), 415)
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or set(body) != {"token"}:
        return make_response(jsonify(error="Send only the token",
                                     advice='The body is {"token": "..."}.'), 400)
    try:
        accepted = redeem_badge(db.session, flow.limits(), body["token"],
                                address=request.remote_addr or "unknown", clock=flow.app_clock(),
                                take_back_with=session.if_failed)
    except TooManyScans as e:
        response = make_response(jsonify(error=e.title, advice=e.advice), 429)
        response.headers["Retry-After"] = "60"
        return response
    except BadgeRejected as e:
        return make_response(jsonify(error=e.title, advice=e.advice), 403)
    school = accepted.badge.school.sourced_id   # read before the sign-in's commit
    response = jsonify(next=flow.continue_after_badge(db.session, accepted))
    # This browser is a scanner device: when this child's session has run out, / and
    # /badges/home bring the scanner back for the next child.
    flow.remember_scanner(response, school)
    return response
