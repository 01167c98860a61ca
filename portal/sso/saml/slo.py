"""SAML Single Logout in the portal: the apps a session signed in to hear when the student signs
out, and an app's own "sign out" ends the portal session too.

On a shared Chromebook the app tabs stay open after "Sign out": without this, the next child who
opens one finds the last child's work. A SAML app registered with a logout address (`portal apps
add-saml --slo-url`, its metadata's SingleLogoutService, or `portal apps logout-uri`) is recorded
in the session at each launch (NameID and SessionIndex, nothing else). At sign-out the portal
session ends first, whatever follows; then the browser visits each such app in turn with a signed
LogoutRequest, and each app sends it back here with its LogoutResponse (profiles 4.4, front
channel). An app that never sends it back leaves the student signed out of the portal and of
every app before it.

Only sign-out in a browser can tell SAML apps: a session that ends elsewhere (the next scan on a
kiosk, the bell, a voided badge) has no browser to send round. OIDC apps hear of those too
(portal.sso.oidc.backchannel).
"""
from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime, timezone

from flask import current_app, redirect, request, session, url_for
from flask_login import current_user

from portal import access
from portal.auth.services import sign_out
from portal.cookies import forget_cookie, read_cookie, set_cookie
from portal.db import db
from portal.models import App, AppKind
from portal.ratelimit import AddressLimiter
from portal.sso.saml import constants as c
from portal.sso.saml.errors import ReleaseMisconfigured, SamlError, UnknownServiceProvider
from portal.sso.saml.logout import (
    SESSION_KEY, LogoutRequest, Participant, accept_logout_request, build_logout_request,
    build_logout_response, participants_in, read_logout_response, redirect_url, signed_for_post,
)
from portal.sso.saml.requests import IncomingMessage, decode_post, decode_redirect
from portal.sso.saml.responses import check_text, name_id_from_claims
from portal.sso.saml.sp import ServiceProvider
from portal.sso.saml.xml import new_id, parse_xml

log = logging.getLogger(__name__)

COOKIE_PATH = "/saml"     # the SAML cookies travel only to the SAML addresses
CHAIN_COOKIE = "portal_saml_logout"
CHAIN_PREFIX = "portal:saml:logout:"
CHAIN_SECONDS = 300                   # a round of the apps should take seconds; then it is dropped
PARKED_COOKIE = "portal_saml_logout_post"
PARKED_PREFIX = "portal:saml:logout-post:"
PARKED_SECONDS = 60
PARKED_LIMIT = "300 per minute"       # per address (a school's, shared): each kept PARKED_SECONDS


def remember_launch(app: App, sp: ServiceProvider, claims: dict) -> str | None:
    """Record that this session signed the student in to `app` (its NameID, from the released
    `claims`), if the app hears of sign-outs; return the SessionIndex to put in the assertion
    (the same for every launch of the session). Nothing for any other app."""
    if not sp.slo_url:
        return None
    name_id, name_id_format = name_id_from_claims(claims, sp)
    # Before it is recorded: a NameID the launch cannot send would break the sign-out round.
    check_text(name_id)
    known = session.get(SESSION_KEY)
    known = dict(known) if isinstance(known, dict) else {}
    entry = known.get(str(app.id))
    if isinstance(entry, list) and entry[:2] == [name_id, name_id_format] and len(entry) == 3:
        return entry[2]
    index = new_id()
    known[str(app.id)] = [name_id, name_id_format, index]
    session[SESSION_KEY] = known
    return index


def participants_of_session() -> list[Participant]:
    """The apps this session signed in to that hear of its end, in the order first launched."""
    return participants_in(session)


def _idp():
    from portal.sso.saml.flows import current_idp
    return current_idp()


def _redis():
    return current_app.extensions["redis"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def start(participants: list[Participant], *, reply: list | None = None, then: str | None = None):
    """After the portal session has ended: send the browser round the apps, then (`reply`: [app
    id, request ID, RelayState]) answer the SAML app that asked, or go on to `then` (an OIDC app's
    registered post-logout address), or show the sign-in page."""
    chain = {"steps": [p.as_json() for p in participants], "waiting": None, "reply": reply,
             "then": then}
    if not chain["steps"]:
        return _finish(chain)
    return keep_for_browser(CHAIN_PREFIX, CHAIN_COOKIE, chain, CHAIN_SECONDS, "saml.logout_next")


def keep_for_browser(prefix: str, cookie: str, data: dict, seconds: int, endpoint: str):
    """Keep `data` in Redis for `seconds` under a random name that only this browser holds, in a
    cookie scoped to /saml (the address carries nothing), and send the browser on to `endpoint`."""
    token = secrets.token_urlsafe(32)
    _redis().set(prefix + token, json.dumps(data), ex=seconds)
    response = redirect(url_for(endpoint), code=303)
    set_cookie(response, cookie, token, max_age=seconds, path=COOKIE_PATH)
    return response


def _load_chain() -> tuple[str, dict] | None:
    """(its name, the round) of the round under way in this browser, if any."""
    token = read_cookie(CHAIN_COOKIE, COOKIE_PATH) or ""
    raw = _redis().get(CHAIN_PREFIX + token) if token else None
    try:
        chain = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    return (token, chain) if isinstance(chain, dict) else None


def _saml_app(app_id) -> tuple[App, ServiceProvider] | None:
    app = db.session.get(App, app_id) if isinstance(app_id, int) else None
    if app is None or app.kind is not AppKind.saml:
        return None
    return app, ServiceProvider.from_app(app)


def next_app():
    """Send the browser to the next app with a LogoutRequest, or finish the round."""
    loaded = _load_chain()
    if loaded is None:
        return redirect(url_for("auth.login"))   # nothing under way: the student is signed out
    token, chain = loaded
    steps = chain.get("steps") if isinstance(chain.get("steps"), list) else []
    chain["steps"] = steps
    if chain.get("waiting"):
        chain["partial"] = True   # the app we sent the browser to never sent it back
        chain["waiting"] = None
    while steps:
        who = Participant.from_json(steps.pop(0))
        found = _saml_app(who.app_id) if who is not None else None
        if found is None or not found[1].slo_url:
            continue   # the app was removed, or no longer hears of sign-outs
        app, sp = found
        idp = _idp()
        xml, request_id = build_logout_request(idp, sp, who, _now())
        chain["waiting"] = [request_id, app.id]
        _redis().set(CHAIN_PREFIX + token, json.dumps(chain), ex=CHAIN_SECONDS)
        return _send(app, sp, sp.slo_url, "SAMLRequest", xml)
    _redis().delete(CHAIN_PREFIX + token)
    response = _finish(chain)
    forget_cookie(response, CHAIN_COOKIE, COOKIE_PATH)
    return response


def _finish(chain: dict):
    reply = chain.get("reply")
    found = _saml_app(reply[0]) if isinstance(reply, list) and len(reply) == 3 else None
    if found is None or not found[1].slo_answer_url:
        then = chain.get("then")
        return redirect(then if isinstance(then, str) and then else url_for("auth.login"), code=303)
    app, sp = found
    idp = _idp()
    xml = build_logout_response(idp, destination=sp.slo_answer_url, in_response_to=str(reply[1]),
                                now=_now(),
                                sub_status=c.STATUS_PARTIAL_LOGOUT if chain.get("partial") else None)
    return _send(app, sp, sp.slo_answer_url, "SAMLResponse", xml, str(reply[2] or ""))


def _send(app: App, sp: ServiceProvider, location: str, param: str, xml: bytes,
          relay_state: str = ""):
    """Send a logout message to the app by the binding its logout address takes: HTTP-Redirect,
    signed in the address, or HTTP-POST, a form the browser posts (its only script allowed by
    hash, as for Responses) carrying the message with an enveloped signature."""
    idp = _idp()
    if sp.slo_by_post:
        from portal.sso.saml.flows import post_to_app
        return post_to_app(location, signed_for_post(idp, xml), relay_state, app.name,
                           param=param, heading=f"Signing you out of {app.name}", button="Go on")
    return redirect(redirect_url(idp, location, param, xml, relay_state), code=302)


class TooManyMessages(SamlError):
    status = 429
    title = "Too many tries"
    advice = "Wait a minute and try again."


def park_post():
    """An app's logout message sent by HTTP-POST is a cross-site POST: it arrives without the
    portal's cookies (SameSite=Lax), so neither the student's session nor a round under way can
    be seen. It is kept a minute under a random name that only this browser holds, and the
    browser comes back for it by a same-site GET, which carries them."""
    from portal.sso.saml.flows import find_saml_app
    from portal.sso.saml.requests import peek_issuer
    param = "SAMLResponse" if "SAMLResponse" in request.form else "SAMLRequest"
    # Only the message the GET will read is kept, and what the GET checks first is checked now:
    # decodable, within the size limits, a SAML message from a registered app (its signature
    # the GET checks). And no one address may keep more than so many at a time.
    fields = {name: request.form[name] for name in (param, "RelayState") if name in request.form}
    if find_saml_app(peek_issuer(parse_xml(decode_post(fields, param).xml))) is None:
        raise UnknownServiceProvider("the logout message's Issuer is not a registered app")
    limiter = AddressLimiter(_redis(), PARKED_LIMIT, scope="saml-logout-post")
    if not limiter.hit(request.remote_addr or "unknown"):
        raise TooManyMessages("too many sign-out messages from this address")
    return keep_for_browser(PARKED_PREFIX, PARKED_COOKIE, fields, PARKED_SECONDS, "saml.logout")


def take_parked() -> dict | None:
    """The message park_post kept for this browser (once), if any."""
    token = read_cookie(PARKED_COOKIE, COOKIE_PATH) or ""
    raw = _redis().getdel(PARKED_PREFIX + token) if token and len(token) <= 100 else None
    try:
        fields = json.loads(raw) if raw else None
    except ValueError:
        return None
    return fields if isinstance(fields, dict) else None


def _incoming(param: str, parked: dict | None) -> IncomingMessage:
    if parked is not None:
        return decode_post(parked, param)
    return decode_redirect(request.query_string.decode("latin-1"), param)


def response_arrived(parked: dict | None = None):
    """An app answers our LogoutRequest: note how it went and go on to the next app. The portal
    session ended before the round began, so a bad answer only goes to the log (and makes the
    answer to an app that asked for the round a partial logout)."""
    loaded = _load_chain()
    waiting = loaded[1].get("waiting") if loaded is not None else None
    found = _saml_app(waiting[1]) if isinstance(waiting, list) and len(waiting) == 2 else None
    if found is None:
        # Not one we are waiting for (a second tab, a late answer): the student is signed out.
        return redirect(url_for("auth.login"))
    (token, chain), (app, sp) = loaded, found
    confirmed = False
    try:
        answer = read_logout_response(_incoming("SAMLResponse", parked), sp=sp,
                                      slo_urls=(_idp().slo_url,), now=_now())
    except SamlError as e:
        log.warning("SAML logout answer from %s not accepted: %s: %s", app.client_id,
                    type(e).__name__, e.reason)
    else:
        if answer.in_response_to != waiting[0]:
            log.info("SAML logout answer from %s is not to our request", app.slug)
        elif not answer.succeeded:
            log.info("SAML app %s could not end its session: %s", app.slug, answer.status)
        else:
            confirmed = True
    chain["waiting"] = None
    chain["partial"] = chain.get("partial") or not confirmed
    _redis().set(CHAIN_PREFIX + token, json.dumps(chain), ex=CHAIN_SECONDS)
    return redirect(url_for("saml.logout_next"), code=303)


def request_arrived(parked: dict | None = None):
    """An app's own sign-out: end the portal session (if it is the student the app names), tell
    the student's other apps, and answer the app."""
    from portal.sso.saml.flows import SpLookup, app_of, remember_request_id

    find_sp = SpLookup()
    try:
        message = _incoming("SAMLRequest", parked)
        asked, sp = accept_logout_request(
            message, find_sp=find_sp, slo_urls=(_idp().slo_url,), now=_now(),
            first_use=lambda issuer, request_id: remember_request_id(_redis(), issuer, request_id))
    except SamlError as e:
        log.warning("SAML logout request %s refused: %s: %s", app_of(find_sp),
                    type(e).__name__, e.reason)
        e.title = "This app sent a sign-out request we can't accept"
        e.advice = ("If you want to sign out, use the Sign out button here."
                    if current_user.is_authenticated else "You are not signed in here.")
        raise
    app = find_sp.app
    others: list[Participant] = []
    if current_user.is_authenticated and _names_this_student(asked, app, sp):
        others = [p for p in participants_of_session() if p.app_id != app.id]
        sign_out()
    return start(others, reply=[app.id, asked.id, message.relay_state])


def _names_this_student(asked: LogoutRequest, app: App, sp: ServiceProvider) -> bool:
    """Is the signed-in student the one the app's request names? (Another child's old request,
    replayed in this browser, must not sign this one out.)"""
    if asked.name_id_format not in ("", c.NAMEID_UNSPECIFIED, sp.nameid_format):
        return False   # the app names someone by another kind of name than it was given
    for who in participants_of_session():
        if who.app_id == app.id:
            return who.name_id == asked.name_id and (
                not asked.session_indexes or who.session_index in asked.session_indexes)
    # Launched before the app had a logout address (so no launch was recorded): an app the
    # student may use knows them by the NameID it would receive now. No other app may ask.
    if not access.may_launch(db.session, current_user, app):
        return False
    settings = current_app.config["SETTINGS"]
    claims = access.released_claims(db.session, current_user, app, pairwise_key=settings.pairwise_key)
    try:
        return name_id_from_claims(claims, sp)[0] == asked.name_id
    except ReleaseMisconfigured:
        return False
