"""The authorization endpoint: check the request, make sure the right student is signed in
recently enough, check the app is granted to them, and send a code to the redirect URI.

Errors go to the redirect URI only once Authlib has matched it exactly to the client's
registered ones; otherwise the browser gets a plain error page.
"""
from __future__ import annotations

import json
import secrets
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidRequestError, OAuth2Request
from authlib.oidc.core.errors import LoginRequiredError, RequestNotSupportedError, RequestURINotSupportedError
from flask import current_app, redirect, render_template, request, session, url_for
from flask_login import current_user
from joserfc import jwt

from portal import access
from portal.auth import destination
from portal.auth.views import sign_in_again
from portal.db import db
from portal.errors import error_page as plain_error_page, whom_to_tell
from portal.extensions import csrf
from portal.ratelimit import AddressLimiter
from portal.sessions import session_ref, watch_session
from portal.sso.oidc import bp, store
from portal.sso.oidc.claims import (
    SignInState, amr_for, hash_secret, must_sign_in, parse_max_age, scope_list,
)
from portal.sso.oidc.keys import ALG, KeyFileError
from portal.sso.oidc.server import SignIn, current_issuer, key_ring, request_with, server
from portal.sso.self_post import self_posting_page

# The parameter /authorize adds to itself when it sends the browser to sign in, and the
# session key that says that sign-in is still to happen (sign-in clears the session).
# The marker is a random id kept in Redis for this exact request (every parameter but the marker)
# and taken once: it cannot be carried to another app or request, nor used a second time.
RESUME = "portal_resume"
PENDING = "oidc_sign_in_pending"
RESUME_SECONDS = 15 * 60
NOT_ALLOWED = "The request has characters that are not allowed."
# An authorization request sent by POST is read again as a GET of at most this many characters
# (path and query): gunicorn reads a request line of at most 4094 bytes, and the line also holds
# the method and the protocol.
MAX_GET_REQUEST = 4000
# The name under which a POSTed request's id_token_hint is kept (see _as_get); the most kept, and
# how many one address may leave.
HINT = "portal_hint"
HINT_MAX = 16_000
HINT_LIMIT = "300 per minute"


def _redis():
    return current_app.extensions["redis"]


def _request_params() -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.values.items(multi=True) if k != RESUME]


def _request_digest(params: list[tuple[str, str]]) -> str:
    return hash_secret(json.dumps(sorted(params)))


def error_page(error: OAuth2Error, status: int = 400):
    """The plain page for a request we cannot answer at a verified redirect URI."""
    return render_template("sso/oidc_error.html", error=error.error, whom=whom_to_tell(status),
                           description=error.get_error_description()), status


def _response_mode() -> str:
    """How the app asked to be answered: "form_post" (OAuth 2.0 Form Post Response Mode) only when
    it asked for that once, else "query" (a repeated or unsupported response_mode is refused by
    _check_extras, in the query)."""
    return "form_post" if request.values.getlist("response_mode") == ["form_post"] else "query"


def to_redirect_uri(response, redirect_uri: str, app_name: str | None):
    """Authlib's authorization response (a redirect to `redirect_uri` with its parameters added)
    as the app asked for it, naming the issuer (RFC 9207: an app that signs in with several
    providers can tell which one answered; mix-up attacks). With form_post, a page whose form
    posts the parameters to the exact redirect URI, by itself: none of them goes into an address
    (nor the shared Chromebook's history, nor a Referer)."""
    if _response_mode() != "form_post":
        response.location = add_params_to_uri(response.location, [("iss", current_issuer())])
        return response
    # add_params_to_uri puts the redirect URI's own query first, then the response's parameters.
    own = len(parse_qsl(urlsplit(redirect_uri).query, keep_blank_values=True))
    fields = parse_qsl(urlsplit(response.location).query, keep_blank_values=True)[own:]
    fields.append(("iss", current_issuer()))
    return self_posting_page(redirect_uri, fields, heading=f"Going back to {app_name or 'the app'}",
                             button="Go on", form_id="oidc-post")


def answer_error(error: OAuth2Error, app_name: str | None = None):
    """Send the error to the redirect URI when it was verified; else show the plain page."""
    if error.redirect_uri:
        return to_redirect_uri(server.handle_error_response(None, error), error.redirect_uri, app_name)
    return error_page(error)


def _pending_marker(data) -> str | None:
    """The marker this request carries, if this session is still to do the sign-in it asked for."""
    marker = data.get(RESUME)
    return marker if marker and session.get(PENDING) == marker else None


def _resumed_at(data) -> int | None:
    """When /authorize asked for the sign-in this request comes back from, if it did (taken once)."""
    marker = data.get(RESUME)
    # A pending marker stays: the way back was followed without signing in, and the sign-in
    # page that is still open must keep working.
    if not marker or len(marker) > 64 or _pending_marker(data):
        return None
    return store.take_sign_in_marker(_redis(), marker, _request_digest(_request_params()))


def _hinted_subject(data, client, redirect_uri: str, state: str | None) -> str | None:
    """Whom the app expects: its login_hint if shaped like our pairwise subject (as a tile launch
    sends it), or the subject of its id_token_hint, which must be an ID token this portal issued to
    this app, expired or not (OpenID Connect Core 3.1.2.1). None: no hint that names a subject.

    Any other login_hint (the username or email an app remembered) is a hint for signing in "if
    necessary" (3.1.2.1): it never makes a signed-in student sign in again (an app that sends it
    with prompt=none would loop), and the code is for whoever is signed in, whom the ID token names."""
    if data.get("login_hint") and access.shaped_like_subject(data["login_hint"]):
        return data["login_hint"]
    hint = data.get("id_token_hint")
    if not hint:
        return None
    try:
        claims = jwt.decode(hint, key_ring().public_key_set(), algorithms=[ALG]).claims
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        ours = (claims.get("iss") == current_issuer() and client.get_client_id() in audiences
                and isinstance(claims.get("sub"), str))
    except KeyFileError:
        raise
    except Exception:  # noqa: BLE001  hostile input in a third-party decoder
        ours = False
    if not ours:
        raise InvalidRequestError("The id_token_hint is not an ID token this portal issued to this app.",
                                  redirect_uri=redirect_uri, state=state)
    return claims["sub"]


def _sign_in_state(person, app, data, hinted: str | None) -> SignInState:
    if person is None:
        return SignInState(auth_time=None)
    subject = None
    if hinted:
        settings = current_app.config["SETTINGS"]
        # Only the subject (always released): not the whole release, which may read the roster.
        subject = access.pairwise_subject(settings.pairwise_key, person, app)
    return SignInState(auth_time=session.get("auth_time"), subject=subject, resumed_at=_resumed_at(data))


def _send_to_sign_in(person, app, state: SignInState, data, hinted: str | None, redirect_uri: str):
    params = _request_params()
    marker = _pending_marker(data) or secrets.token_urlsafe(24)
    next_url = url_for("oidc.authorize") + "?" + urlencode(params + [(RESUME, marker)])
    if len(next_url) > destination.MAX_PATH:
        # The sign-in page could not bring it back: the student would land on the tiles and the
        # app would hear nothing. Tell the app now.
        raise InvalidRequestError("The request is too long to come back from the sign-in page: "
                                  "send a shorter state or id_token_hint.",
                                  redirect_uri=redirect_uri, state=data.get("state"))
    session[PENDING] = marker
    store.save_sign_in_marker(_redis(), marker, _request_digest(params), created=int(time.time()),
                              seconds=RESUME_SECONDS)
    if person is None:
        return redirect(url_for("auth.login", next=next_url))
    # Signed in, but not recently enough (or as someone else): ask again here, for the password
    # (the form posts to the ordinary sign-in, which comes back to next_url) or, after a badge,
    # for a new scan (which continues to next_url).
    hinted_other = bool(hinted) and hinted != state.subject
    choose = "select_account" in scope_list(data.get("prompt"))   # the form names no one then
    return sign_in_again(app.name, next_url, username="" if hinted_other or choose else person.username)


# Authlib refuses repeats of the parameters it reads itself; these it reads as the first value
# (RFC 6749 3.1: "MUST NOT be included more than once"): prompt=none&prompt=login must not
# slip past the fresh sign-in that one of them asks for.
_ONCE = ("nonce", "prompt", "max_age", "login_hint", "id_token_hint", "response_mode", "request",
         "request_uri", "code_challenge_method", "acr_values", "claims", "ui_locales", "display")


def _check_extras(data, redirect_uri: str, state: str | None) -> int | None:
    """Refuse what we do not support; return max_age."""
    for name in _ONCE:
        if len(request.values.getlist(name)) > 1:
            raise InvalidRequestError(f"{name} may be sent only once.", redirect_uri=redirect_uri,
                                      state=state)
    if data.get("request"):
        raise RequestNotSupportedError(redirect_uri=redirect_uri, state=state)
    if data.get("request_uri"):
        raise RequestURINotSupportedError(redirect_uri=redirect_uri, state=state)
    if data.get("response_mode", "query") not in ("query", "form_post"):
        raise InvalidRequestError("Only response_mode=query or form_post is supported.",
                                  redirect_uri=redirect_uri, state=state)
    try:
        return parse_max_age(data.get("max_age"))
    except ValueError:
        raise InvalidRequestError("max_age must be a whole number of seconds.", redirect_uri=redirect_uri,
                                  state=state) from None


def park_for_get(prefix: str, data, *, seconds: int, limit: str, scope: str):
    """Keep what a cross-site POST carried for the same-site GET that reads it: (its name, None),
    or (None, the 429 page) once this address has kept `limit` already."""
    if not AddressLimiter(_redis(), limit, scope=scope).hit(request.remote_addr or "unknown"):
        response = plain_error_page(429)
        response.headers["Retry-After"] = "60"
        return None, response
    return store.park(_redis(), prefix, data, seconds=seconds), None


def _as_get():
    """The same authorization request as a GET, for one that came by POST.

    An app's form posts cross-site, and the browser leaves the portal's SameSite=Lax session
    cookie behind: read then, the request would see nobody signed in (a false login_required for
    prompt=none), and the anonymous session it started would replace the student's own cookie.
    The GET this sends the browser to is a top-level navigation, which carries the cookie. Nothing
    here reads or writes the session.

    An ID token sent as id_token_hint (an app posts to keep it out of addresses) is kept in Redis
    for as long as a sign-in may take, and the GET names it (HINT): it goes into no address, nor
    the shared Chromebook's history."""
    params = list(request.values.items(multi=True))
    hints = request.values.getlist("id_token_hint")
    if len(hints) == 1 and hints[0]:
        if len(hints[0]) > HINT_MAX:
            return error_page(InvalidRequestError(f"The id_token_hint is longer than {HINT_MAX} characters."))
        name, refused = park_for_get(store.HINT_POST, hints[0], seconds=RESUME_SECONDS, limit=HINT_LIMIT,
                                     scope="oidc-authorize-post")
        if refused:
            return refused
        params = [(k, v) for k, v in params if k != "id_token_hint"] + [(HINT, name)]
    target = url_for("oidc.authorize") + "?" + urlencode(params)
    if len(target) > MAX_GET_REQUEST:
        return error_page(InvalidRequestError(
            f"A request sent by POST is read again as a GET of at most {MAX_GET_REQUEST} characters: "
            "send a shorter state, nonce or id_token_hint."))
    return redirect(target, code=303)


def _with_parked_hint():
    """This GET as Authlib is to see it, with the id_token_hint _as_get kept in place of its name;
    or the page to answer when that is gone (a hint that no longer counts must not let the
    sign-in go on as whoever is signed in)."""
    if any(len(request.args.getlist(k)) > 1 for k in (HINT, "response_type", "client_id",
                                                       "redirect_uri", "scope", "state")):
        return error_page(InvalidRequestError("A parameter was sent more than once."))
    hint = store.read_parked(_redis(), store.HINT_POST, request.args[HINT])
    if not isinstance(hint, str):
        return plain_error_page(400, "This sign-in request has expired",
                                "Go back to the app and start again.")
    parameters = {k: v for k, v in request.args.items() if k != HINT}
    return request_with({**parameters, "id_token_hint": hint})


@bp.route("/oidc/authorize", methods=["GET", "POST"])
@csrf.exempt  # apps may POST the authorization request (OpenID Connect Core 3.1.2.1)
def authorize():
    if request.method == "POST":
        return _as_get()
    parked = None
    if HINT in request.args:
        parked = _with_parked_hint()
        if not isinstance(parked, OAuth2Request):
            return parked
    person = current_user if current_user.is_authenticated else None
    try:
        grant = server.get_consent_grant(parked, end_user=person)
    except OAuth2Error as error:
        return answer_error(error)
    except ValueError:  # Authlib refuses to build an error message that quotes hostile input
        return error_page(InvalidRequestError(NOT_ALLOWED))

    data, client = grant.request.payload.data, grant.request.client
    state = data.get("state")
    try:
        max_age = _check_extras(data, grant.redirect_uri, state)
        hinted = _hinted_subject(data, client, grant.redirect_uri, state)
        sign_in = _sign_in_state(person, client.app, data, hinted)
        if must_sign_in(sign_in, now=int(time.time()), prompt=data.get("prompt"), max_age=max_age,
                        login_hint=hinted):
            if "none" in scope_list(data.get("prompt")):
                raise LoginRequiredError(redirect_uri=grant.redirect_uri, state=state)
            return _send_to_sign_in(person, client.app, sign_in, data, hinted, grant.redirect_uri)
        # A student never receives a launch for an app that is not granted to them.
        if not access.may_launch(db.session, person, client.app):
            raise AccessDeniedError("This app is not available to this account.",
                                    redirect_uri=grant.redirect_uri, state=state)
        session.pop(PENDING, None)
        # auth_time only for an app that asked when the student signed in (max_age, or a fresh
        # sign-in: prompt=login), as OpenID Connect Core 2 requires: the same second in every
        # app's ID token would let two apps join the records their pairwise `sub`s keep apart.
        asked = max_age is not None or "login" in scope_list(data.get("prompt"))
        grant.sign_in = SignIn(auth_time=session.get("auth_time") if asked else None,
                               amr=amr_for(session.get("auth_method")),
                               session_ref=session_ref(session.sid) if session.sid else None)
        if session.sid and client.settings.get("backchannel_logout_uri"):
            # The app will hear of the session's end: even of an idle time-out, via the sweep.
            settings = current_app.config["SETTINGS"]
            watch_session(_redis(), session.sid, seconds=settings.session_max_hours * 3600,
                          idle=session.touched_idle or settings.session_idle_minutes * 60)
        return to_redirect_uri(server.handle_response(*grant.create_authorization_response(
            grant.redirect_uri, person)), grant.redirect_uri, client.app.name)
    except OAuth2Error as error:
        error.state = state
        return answer_error(error, client.app.name)
