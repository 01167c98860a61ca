"""The SAML flows inside the portal: who is signed in, what is released, what is recorded.

Everything protocol-shaped is in the pure modules (requests, responses, metadata); this module
supplies them with the session, the database, Redis and the clock, and turns results into pages.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from datetime import datetime, timezone

from flask import current_app, make_response, redirect, render_template, session, url_for
from flask_login import current_user
from sqlalchemy import select

from portal import access, audit
from portal.addresses import public_url
from portal.auth.views import sign_in_again
from portal.config import ConfigError
from portal.cookies import forget_cookie, read_cookie
from portal.errors import worded
from portal.db import db
from portal.models import App, AppKind
from portal.sso import SigningUnavailable, log_unavailable
from portal.sso.saml import authn_context, slo
from portal.sso.saml import constants as c
from portal.sso.saml.errors import AppNotGranted, SamlError
from portal.sso.saml.keys import load_keys
from portal.sso.saml.requests import AcceptedRequest
from portal.sso.saml.responses import Authentication, issue_response, issue_status_response
from portal.sso.saml.sp import IdentityProvider, ServiceProvider
from portal.sso.self_post import self_posting_page

log = logging.getLogger(__name__)

PENDING_COOKIE = "portal_saml_pending"
PENDING_PREFIX = "portal:saml:pending:"
REPLAY_PREFIX = "portal:saml:request-id:"


def load_signing_keys(app) -> None:
    """Read the signing key and certificate into `app` (create_app, in production: one that
    can't be read stops start-up with a ConfigError naming its setting)."""
    settings = app.config["SETTINGS"]
    app.extensions["saml_keys"] = load_keys(settings.saml_key_file, settings.saml_cert_file,
                                            settings.instance_path, settings.saml_next_cert_file)


def signing_keys():
    """This app's signing keys (read once per app), or SigningUnavailable, logged with the reason."""
    keys = current_app.extensions.get("saml_keys")
    if keys is None:
        try:
            load_signing_keys(current_app)
        except ConfigError as e:
            log_unavailable("SAML", str(e))
            raise SigningUnavailable() from None
        keys = current_app.extensions["saml_keys"]
    return keys


def current_idp() -> IdentityProvider:
    """Return our identity provider as this app is configured (keys loaded once per app)."""
    settings = current_app.config["SETTINGS"]
    keys = signing_keys()
    # From configuration whenever it names the portal's address, never from the client's Host.
    entity_id = settings.saml_entity_id or public_url("saml.metadata")
    return IdentityProvider(entity_id=entity_id, sso_url=public_url("saml.sso"), keys=keys,
                            slo_url=public_url("saml.logout"))


def find_saml_app(entity_id: str) -> App | None:
    """Return the registered SAML app with this entity ID, if any."""
    return db.session.scalar(select(App).where(App.client_id == entity_id, App.kind == AppKind.saml))


class SpLookup:
    """`find_sp` for the request checkers: a registered app's SAML settings by entity ID, keeping
    the App it found (`app`) for the flow that answers."""

    app: App | None = None

    def __call__(self, entity_id: str) -> ServiceProvider | None:
        self.app = find_saml_app(entity_id)
        return ServiceProvider.from_app(self.app) if self.app is not None else None


def app_of(find_sp: SpLookup) -> str:
    """Whose message it says it is, for the log: "naming" the registered app's entity ID its Issuer
    gives (only what the message says: anyone can name an app in a refused message), or "naming
    no registered app" (unreadable, or an Issuer no app has)."""
    return f"naming {find_sp.app.client_id}" if find_sp.app is not None else "naming no registered app"


def remember_request_id(client, issuer: str, request_id: str) -> bool:
    """Record a request ID; False if this issuer used it before (SET NX with expiry)."""
    digest = hashlib.sha256(f"{issuer}\n{request_id}".encode()).hexdigest()
    return bool(client.set(REPLAY_PREFIX + digest, b"1", nx=True, ex=c.REPLAY_TTL_SECONDS))


def _authentication(requested: authn_context.RequestedContext | None = None, *,
                    exact: bool = False) -> Authentication:
    """How and when the student signed in, for the AuthnStatement. The instant is the minute of
    the sign-in, not its second: every app launched in one sign-in receives it, and to the second
    it would let two apps join the records their pairwise NameIDs keep apart (a class signs in
    within the same minutes). Earlier, never later: an app's "signed in within N" check stays
    safe. Exact (`exact`) for a ForceAuthn request, which asked for a sign-in just now."""
    now = datetime.now(timezone.utc)
    try:
        instant = datetime.fromtimestamp(int(session["auth_time"]), timezone.utc)
    except (KeyError, TypeError, ValueError):
        instant = now
    instant = min(instant, now)
    if not exact:
        instant = instant.replace(second=0, microsecond=0)
    method = str(session.get("auth_method", ""))
    return Authentication(method=method, instant=instant,
                          claimed=authn_context.answered_class(requested, method))


def post_to_app(acs_url: str, saml_response: bytes, relay_state: str, app_name: str, *,
                param: str = "SAMLResponse", heading: str | None = None, button: str | None = None):
    """Render the page that carries a message to the app: a form that submits itself (HTTP-POST
    binding). `param`: SAMLResponse, or SAMLRequest for a logout request; the page says it is
    opening the app unless `heading` and `button` say otherwise."""
    fields = [(param, base64.b64encode(saml_response).decode())]
    if relay_state:
        fields.append(("RelayState", relay_state))
    return self_posting_page(acs_url, fields, heading=heading or f"Opening {app_name}",
                             button=button or f"Open {app_name}", form_id="saml-post")


def answer(app: App, sp: ServiceProvider, *, acs_url: str, relay_state: str,
           in_response_to: str | None = None, authn: Authentication | None = None):
    """Sign the student into `app`: release its claims, record the launch, post the Response
    (its AuthnContext from `authn`, which met the request; else how the student signed in)."""
    settings = current_app.config["SETTINGS"]
    claims = access.released_claims(db.session, current_user, app, pairwise_key=settings.pairwise_key)
    session_index = slo.remember_launch(app, sp, claims)
    xml = issue_response(current_idp(), sp, acs_url=acs_url, claims=claims,
                         authn=authn or _authentication(), in_response_to=in_response_to,
                         session_index=session_index)
    app_name = app.name  # read now: the audit commit expires `app`, and reading it after is a query
    data = {"protocol": "saml", "fields": list(claims)}
    if ids := access.released_ids(settings.pairwise_key, claims):
        data["ids"] = ids
    # Written once the session (which remembers the launch for Single Logout) is stored: a
    # launch the 503 page stopped released nothing and is not recorded. Not before: the INSERT
    # would hold SQLite's one write lock while Redis saves the session (seconds in a fail-over).
    person = current_user._get_current_object()
    session.when_stored.append(lambda: audit.record("launch", person=person, app=app, data=data))
    return post_to_app(acs_url, xml, relay_state, app_name)


def idp_initiated_launch(app: App):
    """Launch a SAML app from its tile (the caller has checked access.may_launch)."""
    sp = ServiceProvider.from_app(app)
    return answer(app, sp, acs_url=sp.default_acs, relay_state=sp.relay_state)


def answer_status(acs_url: str, request_id: str, relay_state: str, app_name: str, sub_status: str):
    """Tell the app, in a signed Response with no assertion, why it gets no sign-in."""
    xml = issue_status_response(current_idp(), acs_url=acs_url, in_response_to=request_id,
                                sub_status=sub_status)
    return post_to_app(acs_url, xml, relay_state, app_name)


def not_granted(app: App, acs_url: str, request_id: str, relay_state: str):
    """The app asked to sign in a student who may not open it (not granted, or the family opted
    out): the student reads why, in words for a child, and a button takes them back to the app
    with a signed Response saying RequestDenied (SAML core 3.4.1.4: the app must get a Response).
    It names no one: nothing about a student goes to an app they may not open."""
    log.info("SAML request from %s for someone who may not open it: answered RequestDenied",
             app.client_id)
    xml = issue_status_response(current_idp(), acs_url=acs_url, in_response_to=request_id,
                                sub_status=c.STATUS_REQUEST_DENIED)
    denied = AppNotGranted.status
    page = render_template("sso/saml_not_granted.html", title=AppNotGranted.title,
                           advice=worded(AppNotGranted.advice, denied), status=denied,
                           acs_url=acs_url, app_name=app.name, relay_state=relay_state,
                           saml_message=base64.b64encode(xml).decode())
    return make_response(page, denied)


def _park_pending(accepted: AcceptedRequest, app: App):
    """Keep the request until the student has signed in, and send the browser to /saml/resume.

    Sign-in clears and rotates the session (no fixation), so nothing in it survives sign-in: the
    pending request waits in Redis instead, under a name only this browser holds."""
    requested = _requested(accepted)
    pending = {"app_id": app.id, "request_id": accepted.request.id, "acs_url": accepted.acs_url,
               "relay_state": accepted.relay_state, "is_passive": accepted.request.is_passive,
               "requested_context": requested.as_json() if requested else None,
               # ForceAuthn: only a sign-in after this request arrived answers it. By time, not
               # by session: a POSTed request arrives without our (SameSite=Lax) cookie, so the
               # session seen here is not the student's.
               "sign_in_after": _now_ms() if accepted.request.force_authn else None}
    return slo.keep_for_browser(PENDING_PREFIX, PENDING_COOKIE, pending, c.PENDING_TTL_SECONDS,
                                "saml.resume")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _signed_in_before(instant_ms: int) -> bool:
    """True when the student's sign-in happened before `instant_ms` (or when is not known)."""
    signed_in = session.get("auth_ms")
    return not isinstance(signed_in, int) or signed_in < instant_ms


def _requested(accepted: AcceptedRequest) -> authn_context.RequestedContext | None:
    """The authentication context the request asks for, unless the district set the app to have
    every request answered whatever it asks (its SAML library asks for a password by default,
    which a badge sign-in is not): the Response then says truthfully how the student signed in."""
    return None if accepted.sp.ignore_requested_context else accepted.request.requested_context


def continue_sp_initiated(accepted: AcceptedRequest, app: App):
    """Answer an accepted AuthnRequest now, or park it until the student has signed in."""
    request = accepted.request
    if request.nameid_policy_refused(accepted.sp):
        # An app that asked for an email address as the NameID must not take an opaque id for one.
        return answer_status(accepted.acs_url, request.id, accepted.relay_state, app.name,
                             c.STATUS_INVALID_NAMEID_POLICY)
    if request.force_authn and request.is_passive:
        # "Sign in again, without showing anything": impossible, and the SP hears so.
        return answer_status(accepted.acs_url, request.id, accepted.relay_state, app.name,
                             c.STATUS_NO_PASSIVE)
    if current_user.is_authenticated:
        if not access.may_launch(db.session, current_user, app):
            if request.is_passive:
                # Passive: the app keeps the screen (SAML core 3.4.1.1); it hears the refusal.
                return answer_status(accepted.acs_url, request.id, accepted.relay_state, app.name,
                                     c.STATUS_REQUEST_DENIED)
            return not_granted(app, accepted.acs_url, request.id, accepted.relay_state)
        authn = _authentication(_requested(accepted))
        if authn.claimed is None:
            # Not met. Signing in again (ForceAuthn too) is the same way again: it could not help.
            return answer_status(accepted.acs_url, request.id, accepted.relay_state, app.name,
                                 c.STATUS_NO_AUTHN_CONTEXT)
    if not current_user.is_authenticated or request.force_authn:
        # A cross-site POST arrives without our (SameSite=Lax) cookie even when the student is
        # signed in; the redirect to /saml/resume is a top-level GET that carries it. With
        # ForceAuthn the resume asks for a fresh sign-in first.
        return _park_pending(accepted, app)
    return answer(app, accepted.sp, acs_url=accepted.acs_url, relay_state=accepted.relay_state,
                  in_response_to=request.id, authn=authn)


def resume_sp_initiated():
    """Finish a parked request once the student is signed in (single use)."""
    token = read_cookie(PENDING_COOKIE, slo.COOKIE_PATH) or ""
    key = PENDING_PREFIX + token
    client = current_app.extensions["redis"]
    raw = client.get(key) if token else None
    if raw is None:
        raise SamlError("no pending request", title="This sign-in has expired",
                        advice="Go back to the app and start again.")
    pending = json.loads(raw)
    app = db.session.get(App, pending["app_id"])
    if app is None or app.kind is not AppKind.saml:
        client.delete(key)
        raise SamlError("the app was removed", title="This app is no longer available")
    sp = ServiceProvider.from_app(app)
    if pending["acs_url"] not in sp.acs_urls:
        client.delete(key)
        raise SamlError("the app's ACS URLs changed", advice="Go back to the app and start again.")
    if not current_user.is_authenticated:
        if pending["is_passive"]:
            client.delete(key)
            return _forget_pending(answer_status(pending["acs_url"], pending["request_id"],
                                                 pending["relay_state"], app.name, c.STATUS_NO_PASSIVE))
        return redirect(url_for("auth.login", next=url_for("saml.resume")))
    if pending.get("sign_in_after") is not None and _signed_in_before(pending["sign_in_after"]):
        # ForceAuthn: the app wants the student to sign in again now (password, or badge).
        return sign_in_again(app.name, url_for("saml.resume"))
    if not client.delete(key):
        # Another tab used it a moment ago.
        raise SamlError("pending request already used", title="This sign-in has expired",
                        advice="Go back to the app and start again.")
    if not access.may_launch(db.session, current_user, app):
        if pending["is_passive"]:
            return _forget_pending(answer_status(pending["acs_url"], pending["request_id"],
                                                 pending["relay_state"], app.name,
                                                 c.STATUS_REQUEST_DENIED))
        return _forget_pending(not_granted(app, pending["acs_url"], pending["request_id"],
                                           pending["relay_state"]))
    authn = _authentication(authn_context.RequestedContext.from_json(pending.get("requested_context")),
                            exact=pending.get("sign_in_after") is not None)
    if authn.claimed is None:
        return _forget_pending(answer_status(pending["acs_url"], pending["request_id"],
                                             pending["relay_state"], app.name, c.STATUS_NO_AUTHN_CONTEXT))
    return _forget_pending(answer(app, sp, acs_url=pending["acs_url"],
                                  relay_state=pending["relay_state"],
                                  in_response_to=pending["request_id"], authn=authn))


def _forget_pending(response):
    forget_cookie(response, PENDING_COOKIE, slo.COOKIE_PATH)
    return response
