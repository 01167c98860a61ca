"""Discovery, keys, token, userinfo, logout, and the tile launch. Thin: they move bytes."""
from __future__ import annotations

import hmac
import logging
import secrets
import time

import redis
from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc6750 import InvalidTokenError
from flask import current_app, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from portal import access
from portal.addresses import public_url
from portal.errors import (
    STORE_RETRY_AFTER, UnreadableInput, error_page as plain_error_page, store_unavailable, tell,
)
from portal.extensions import csrf
from portal.models import App
from portal.redis_store import RedisUnavailable, redis_said
from portal.sso import SigningUnavailable
from portal.sso.oidc import bp, store
from portal.sso.oidc.authorize import NOT_ALLOWED, error_page, park_for_get
from portal.sso import log_unavailable
from portal.sso.oidc.keys import JWKS_MAX_AGE, KeyFileError
from portal.sso.oidc.metadata import provider_metadata
from portal.sso.oidc.server import (
    body_access_tokens, current_issuer, hint_is_for, key_ring, release_userinfo, request_with,
    require_oauth, return_after_asking, server,
)
from portal.sso.saml import slo


log = logging.getLogger(__name__)


# The endpoints an app's server calls: what goes wrong there is answered in OAuth's JSON.
_APP_SERVER_ENDPOINTS = ("oidc.token", "oidc.jwks", "oidc.userinfo")


def _unavailable_json(description: str):
    response = jsonify(error="temporarily_unavailable", error_description=description)
    response.status_code = 503
    response.headers["Cache-Control"] = "no-store"
    response.headers["Retry-After"] = STORE_RETRY_AFTER
    return response


@bp.errorhandler(KeyFileError)
def _no_signing_key(e: KeyFileError):
    """No usable signing key (the key folder names the file): apps' servers get OAuth's JSON,
    people a page in plain words; nothing is half done, so trying again later works."""
    log_unavailable("OpenID Connect", str(e))
    if request.endpoint in _APP_SERVER_ENDPOINTS:
        return _unavailable_json("The portal cannot sign tokens now. Try again later.")
    return plain_error_page(503, SigningUnavailable.title, SigningUnavailable.advice)


@bp.errorhandler(UnreadableInput)
def _unreadable(e: UnreadableInput):
    """A NUL in what an app's server sent: OAuth's invalid_request; for people, the page."""
    if request.endpoint in _APP_SERVER_ENDPOINTS:
        return server.handle_error_response(None, InvalidRequestError(NOT_ALLOWED))
    return plain_error_page(e.status, e.title, e.advice)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(e: RequestEntityTooLarge):
    """A body over the portal's limit: an app's server reads OAuth's invalid_request (413)."""
    if request.endpoint in _APP_SERVER_ENDPOINTS:
        response = server.handle_error_response(None, InvalidRequestError("The request is too large."))
        response.status_code = 413
        return response
    return plain_error_page(413)


@bp.errorhandler(RedisUnavailable)
@bp.errorhandler(redis.RedisError)
def _store_down(e: Exception):
    """Redis away: an app's server reads OAuth's "temporarily_unavailable", a person the page."""
    if request.endpoint in _APP_SERVER_ENDPOINTS:
        log.warning("redis unavailable: %s", redis_said(e))
        return _unavailable_json("The portal cannot reach its session store. Try again in a minute.")
    return store_unavailable(e)


_url = public_url   # on the configured issuer's origin, never the client's Host


def _public_json(document: dict):
    response = jsonify(document)
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.route("/.well-known/openid-configuration")
def discovery():
    return _public_json(provider_metadata(
        current_issuer(), authorize=_url("oidc.authorize"), token=_url("oidc.token"),
        userinfo=_url("oidc.userinfo"), jwks=_url("oidc.jwks"), end_session=_url("oidc.end_session"),
    ))


@bp.route("/oidc/jwks")
def jwks():
    return _public_json(key_ring().public_jwks())


@bp.route("/oidc/token", methods=["POST"])
@csrf.exempt  # apps authenticate with their client secret, not a browser session
def token():
    key_ring()  # no usable key: refuse before the code is used up, so the app can try again
    problem = _token_request_problem()
    if problem is not None:
        return server.handle_error_response(None, problem)
    try:
        return server.create_token_response()
    except OAuth2Error as error:  # e.g. insecure transport, raised before Authlib's own handling
        return server.handle_error_response(None, error)
    except ValueError:  # Authlib refuses to build an error message that quotes hostile input
        return server.handle_error_response(None, InvalidRequestError(NOT_ALLOWED))


# What a token request carries; each once, and in the body (RFC 6749 3.2 and 4.1.3).
_TOKEN_PARAMETERS = ("grant_type", "code", "redirect_uri", "code_verifier", "client_id", "client_secret")


def _token_request_problem():
    """An error for a token request Authlib would read too kindly (it takes the first of repeated
    parameters, reads the query, and tries a second way of authenticating when the first fails)."""
    if request.mimetype != "application/x-www-form-urlencoded":
        # RFC 6749 4.1.3; JSON or text would read as no grant_type at all, a misleading answer.
        return InvalidRequestError("Send the token request as application/x-www-form-urlencoded.")
    form = request.form
    for name in _TOKEN_PARAMETERS:
        if len(form.getlist(name)) > 1:
            return InvalidRequestError(f"{name} may be sent only once.")
        if name in request.args:
            return InvalidRequestError(f"Send {name} in the request body, not in the address.")
    if not form.get("grant_type"):
        return InvalidRequestError("Send grant_type=authorization_code.")   # RFC 6749 5.2
    # Read as Authlib reads it (its base64 decoding is lenient where werkzeug's is strict): a
    # header only Authlib could read would otherwise pass here and fall back to the body's.
    try:
        basic_id, _ = extract_basic_authorization(request.headers)
    except ValueError:  # non-ASCII in the header, or credentials that are not UTF-8
        # RFC 6749 5.2: a client that tried the Authorization header is answered 401 (Basic).
        return InvalidClientError(description="The client's Basic credentials cannot be read.",
                                  status_code=401)
    if basic_id is not None:
        # RFC 6749 2.3: a client uses one way of authenticating in a request, not two.
        if "client_secret" in form or ("client_id" in form and form["client_id"] != basic_id):
            return InvalidClientError(description="Authenticate the client one way only.")
    return None


class _BearerRequestError(InvalidRequestError):
    """RFC 6750 3.1's invalid_request, with the challenge that names it."""

    def get_headers(self):
        return [*super().get_headers(),
                ("WWW-Authenticate", f'Bearer error="{self.error}", error_description="{self.description}"')]


@bp.route("/oidc/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo():
    authorization = request.headers.get("Authorization")
    in_body = body_access_tokens()
    ways = (authorization is not None) + bool(in_body) + ("access_token" in request.args)
    if ways > 1 or len(in_body) > 1:
        # RFC 6750 2: a request uses one way of sending the token, and sends it once.
        return server.handle_error_response(None, _BearerRequestError(
            "Send the access token once, one way: in the Authorization header, or in the body of "
            "a form-encoded POST."))
    scheme = ((authorization or "").split(None, 1) or [""])[0]
    if not in_body and scheme.lower() != "bearer":
        # RFC 6750 3.1: a request with no credentials at all gets the challenge, no error code;
        # credentials of another scheme are none of this endpoint's, nor is a token in the
        # address (kept in logs and histories) or in a body that is not a form POST's.
        response = current_app.response_class(status=401)
        response.headers["WWW-Authenticate"] = 'Bearer realm="userinfo"'
        response.headers["Cache-Control"] = "no-store"
        return response
    try:
        token = require_oauth.acquire_token(["openid"])   # from the header or the form body
        claims = release_userinfo(token)
        if claims is None:
            raise InvalidTokenError()
    except OAuth2Error as error:
        return server.handle_error_response(None, error)
    response = jsonify(claims)
    response.headers["Cache-Control"] = "no-store"
    return response


def _redis():
    return current_app.extensions["redis"]


# A logout request sent by POST is kept this long for the GET that reads it; the GET names it by
# this parameter. Only the logout parameters are kept, so much of them at most, and one address
# (a school's, shared) may leave so many at a time.
PARKED = "portal_parked"
PARKED_SECONDS = 60
PARKED_MAX = 16_000
PARKED_LIMIT = "300 per minute"
# How long the page that asks before signing out remembers where the app wants the browser back.
ASKING_SECONDS = 15 * 60
LOGOUT_RETURN = "oidc_logout_return"
_LOGOUT_PARAMETERS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "logout_hint",
                      "ui_locales")


def _park_logout():
    """An app's logout form posts cross-site, and the browser leaves the portal's SameSite=Lax
    session cookie behind: read then, the request would see nobody signed in and send the app
    its post-logout address as if the student were signed out, while they stay signed in. It is
    kept a minute under a random name, and the browser comes back for it by a same-site GET,
    which carries the cookie. The ID token in it goes into no address (nor the browser's
    history). Nothing here reads or writes the session."""
    kept = {name: request.values[name] for name in _LOGOUT_PARAMETERS if name in request.values}
    if sum(len(value) for value in kept.values()) > PARKED_MAX:
        return error_page(InvalidRequestError(f"The logout request is longer than {PARKED_MAX} characters."))
    name, refused = park_for_get(store.LOGOUT_POST, kept, seconds=PARKED_SECONDS, limit=PARKED_LIMIT,
                                 scope="oidc-logout-post")
    if refused:
        return refused
    return redirect(url_for("oidc.end_session", **{PARKED: name}), code=303)


@bp.route("/oidc/logout", methods=["GET", "POST"])
@csrf.exempt  # apps may POST the logout request; unless it proves it is for this sign-in, we ask first
def end_session():
    if request.method == "POST":
        return _park_logout()
    parked = None
    if PARKED in request.args:
        if len(request.args) == 1:
            parked = store.read_parked(_redis(), store.LOGOUT_POST, request.args[PARKED], once=True)
        if not isinstance(parked, dict):
            return plain_error_page(400, "This sign-out request has expired",
                                    "Nothing was changed. To sign out, use the Sign out button on "
                                    "your apps page.")
    try:
        logout = server.validate_endpoint_request(
            "end_session", request_with(parked) if parked is not None else None)
    except OAuth2Error as error:
        # Never redirect on a bad logout request (RP-Initiated Logout 1.0, section 4).
        return error_page(error)
    except ValueError:
        return error_page(InvalidRequestError(NOT_ALLOWED))
    # Signed in: only an ID token issued to this student during this sign-in signs them out
    # without asking. Nobody signed in: nothing to lose, so redirect as far as the request allows.
    if current_user.is_authenticated and not hint_is_for(logout, current_user, session.get("auth_time")):
        # Where to go after a yes is kept in the session, not in the form: the form names it
        # only. One a session: a newer ask replaces it (nor can asking again and again fill Redis).
        back = return_after_asking(logout)
        then = secrets.token_urlsafe(16) if back else None
        session[LOGOUT_RETURN] = [then, back, int(time.time()) + ASKING_SECONDS] if back else None
        return render_template("sso/oidc_sign_out.html", then=then)
    saml_apps = slo.participants_of_session()
    response = server.create_endpoint_response("end_session", logout)
    if saml_apps:
        # The SAML apps this session signed in to hear of it first (Single Logout), then the
        # browser goes where the app asked.
        return slo.start(saml_apps, then=response.headers.get("Location") if response else None)
    return response or render_template("sso/oidc_signed_out.html")


@bp.route("/oidc/logout/confirm", methods=["POST"])
def confirm_end_session():
    from portal.auth.services import sign_out
    then = _asked_return(session.pop(LOGOUT_RETURN, None), request.form.get("then"))
    saml_apps = slo.participants_of_session()
    sign_out()
    if saml_apps:
        return slo.start(saml_apps, then=then)
    if then:
        return redirect(then, code=303)
    return render_template("sso/oidc_signed_out.html")


def _asked_return(kept, named: str | None) -> str | None:
    """Where the app that asked wants the browser back, if the form pressed is the page that
    asked last, within ASKING_SECONDS (else: sign out all the same, and stay)."""
    if not (isinstance(kept, list) and len(kept) == 3 and isinstance(kept[0], str)
            and isinstance(kept[1], str) and isinstance(kept[2], int) and named):
        return None
    if not hmac.compare_digest(kept[0].encode(), named.encode()[:64]) or time.time() > kept[2]:
        return None
    return kept[1]


def start_third_party_login(app: App):
    """Launch a tile: send the browser to the app's login URI to start its own code flow."""
    settings = current_app.config["SETTINGS"]
    login_uri = (app.settings or {}).get("login_uri")
    if not login_uri:
        return plain_error_page(404, "This app is not ready yet",
                                tell("Tell {whom}: it has no sign-in address."))
    # The subject is always released: the app's other fields are not read for a login hint.
    subject = access.pairwise_subject(settings.pairwise_key, current_user, app)
    return redirect(add_params_to_uri(login_uri, [
        ("iss", current_issuer()), ("login_hint", subject), ("target_link_uri", app.url or login_uri),
    ]))
