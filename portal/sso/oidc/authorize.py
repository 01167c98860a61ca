"""The authorization endpoint: check the request, make sure the right student is signed in
recently enough, check the app is granted to them, and send a code to the redirect URI.

Errors go to the redirect URI only once Authlib has matched it exactly to the client's
registered ones; otherwise the browser gets a plain error page.
"""
from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidRequestError
from authlib.oidc.core.errors import LoginRequiredError, RequestNotSupportedError, RequestURINotSupportedError
from flask import current_app, redirect, render_template, request, session, url_for
from flask_login import current_user
from itsdangerous import BadData, URLSafeTimedSerializer

from portal import access
from portal.auth.views import sign_in_again
from portal.db import db
from portal.extensions import csrf
from portal.sso.oidc import bp
from portal.sso.oidc.claims import SignInState, amr_for, must_sign_in, parse_max_age, scope_list
from portal.sso.oidc.server import SignIn, server

# The parameter /authorize adds to itself when it sends the browser to sign in, and the
# session key that says that sign-in is still to happen (sign-in clears the session).
RESUME = "portal_resume"
PENDING = "oidc_sign_in_pending"
RESUME_SECONDS = 15 * 60
NOT_ALLOWED = "The request has characters that are not allowed."


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="portal-oidc-sign-in")


def error_page(error: OAuth2Error, status: int = 400):
    """The plain page for a request we cannot answer at a verified redirect URI."""
    return render_template("sso/oidc_error.html", error=error.error,
                           description=error.get_error_description()), status


def answer_error(error: OAuth2Error):
    """Send the error to the redirect URI when it was verified; else show the plain page."""
    if error.redirect_uri:
        return server.handle_error_response(None, error)
    return error_page(error)


def _sign_in_state(person, app, data) -> SignInState:
    if person is None:
        return SignInState(auth_time=None)
    resumed_at, pending = None, False
    if data.get(RESUME):
        try:
            marker = _serializer().loads(data[RESUME], max_age=RESUME_SECONDS)
            resumed_at = int(marker["t"])
            pending = session.get(PENDING) == marker["r"]
        except (BadData, KeyError, TypeError, ValueError):
            resumed_at = None
    subject = None
    if data.get("login_hint"):
        settings = current_app.config["SETTINGS"]
        # Only the subject (always released): not the whole release, which may read the roster.
        subject = access.pairwise_subject(settings.pairwise_key, person, app)
    return SignInState(auth_time=session.get("auth_time"), subject=subject, resumed_at=resumed_at,
                       resumed_pending=pending)


def _send_to_sign_in(person, app, state: SignInState):
    rid = secrets.token_urlsafe(12)
    session[PENDING] = rid
    marker = _serializer().dumps({"t": int(time.time()), "r": rid})
    params = [(k, v) for k, v in request.values.items(multi=True) if k != RESUME]
    next_url = url_for("oidc.authorize") + "?" + urlencode(params + [(RESUME, marker)])
    if person is None:
        return redirect(url_for("auth.login", next=next_url))
    # Signed in, but not recently enough (or as someone else): ask again here, for the password
    # (the form posts to the ordinary sign-in, which comes back to next_url) or, after a badge,
    # for a new scan (which continues to next_url).
    hint = request.values.get("login_hint")
    hinted_other = bool(hint) and hint != state.subject
    return sign_in_again(app.name, next_url, username="" if hinted_other else person.username)


def _check_extras(data, redirect_uri: str, state: str | None) -> int | None:
    """Refuse what we do not support; return max_age."""
    if data.get("request"):
        raise RequestNotSupportedError(redirect_uri=redirect_uri, state=state)
    if data.get("request_uri"):
        raise RequestURINotSupportedError(redirect_uri=redirect_uri, state=state)
    if data.get("response_mode", "query") != "query":
        raise InvalidRequestError("Only response_mode=query is supported.", redirect_uri=redirect_uri,
                                  state=state)
    try:
        return parse_max_age(data.get("max_age"))
    except ValueError:
        raise InvalidRequestError("max_age must be a whole number of seconds.", redirect_uri=redirect_uri,
                                  state=state) from None


@bp.route("/oidc/authorize", methods=["GET", "POST"])
@csrf.exempt  # apps may POST the authorization request (OpenID Connect Core 3.1.2.1)
def authorize():
    person = current_user if current_user.is_authenticated else None
    try:
        grant = server.get_consent_grant(end_user=person)
    except OAuth2Error as error:
        return answer_error(error)
    except ValueError:  # Authlib refuses to build an error message that quotes hostile input
        return error_page(InvalidRequestError(NOT_ALLOWED))

    data, client = grant.request.payload.data, grant.request.client
    state = data.get("state")
    try:
        max_age = _check_extras(data, grant.redirect_uri, state)
        sign_in = _sign_in_state(person, client.app, data)
        if must_sign_in(sign_in, now=int(time.time()), prompt=data.get("prompt"), max_age=max_age,
                        login_hint=data.get("login_hint")):
            if "none" in scope_list(data.get("prompt")):
                raise LoginRequiredError(redirect_uri=grant.redirect_uri, state=state)
            return _send_to_sign_in(person, client.app, sign_in)
        # A student never receives a launch for an app that is not granted to them.
        if not access.may_launch(db.session, person, client.app):
            raise AccessDeniedError("This app is not available to this account.",
                                    redirect_uri=grant.redirect_uri, state=state)
        session.pop(PENDING, None)
        grant.sign_in = SignIn(auth_time=session.get("auth_time"), amr=amr_for(session.get("auth_method")))
        return server.handle_response(*grant.create_authorization_response(grant.redirect_uri, person))
    except OAuth2Error as error:
        error.state = state
        return answer_error(error)
