"""SAML endpoints: views only move bytes between HTTP and the pure functions."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from flask import Response, current_app, request

from portal.cookies import forget_cookie
from portal.errors import error_page
from portal.extensions import csrf
from portal.sso.saml import bp, slo
from portal.sso.saml.errors import SamlError
from portal.sso.saml.flows import (
    SpLookup, app_of, continue_sp_initiated, current_idp, remember_request_id, resume_sp_initiated,
)
from portal.sso.saml.metadata import idp_metadata
from portal.sso.saml.requests import accept_authn_request, decode_post, decode_redirect

log = logging.getLogger(__name__)

METADATA_MAX_AGE = 300   # seconds, as long as the OpenID discovery document's


@bp.route("/metadata")
def metadata():
    response = Response(idp_metadata(current_idp()), mimetype="application/samlmetadata+xml")
    # Public and the same for everyone, like the OpenID discovery document; short, so that apps
    # that fetch it see a new signing certificate within minutes.
    response.headers["Cache-Control"] = f"public, max-age={METADATA_MAX_AGE}"
    return response


@bp.route("/sso", methods=["GET", "POST"])
@csrf.exempt  # the app's form posts here cross-site; the signed, single-use request is the check
def sso():
    find_sp = SpLookup()
    redis_client = current_app.extensions["redis"]
    try:
        if request.method == "GET":
            message = decode_redirect(request.query_string.decode("latin-1"))
        else:
            message = decode_post(request.form)
        accepted = accept_authn_request(
            message, find_sp=find_sp, sso_urls=(current_idp().sso_url,),
            now=datetime.now(timezone.utc),
            first_use=lambda issuer, request_id: remember_request_id(redis_client, issuer, request_id))
    except SamlError as e:
        # The reason and whose request, never the request itself.
        log.warning("SAML request %s refused: %s: %s", app_of(find_sp), type(e).__name__,
                    e.reason)
        raise
    return continue_sp_initiated(accepted, find_sp.app)


@bp.route("/resume")
def resume():
    return resume_sp_initiated()


@bp.route("/slo", methods=["GET", "POST"], endpoint="logout")
@csrf.exempt  # apps send their logout requests and answers cross-site; signatures are the check
def single_logout():
    if request.method == "POST":
        try:
            return slo.park_post()   # back by a same-site GET, which carries the portal's cookies
        except slo.TooManyMessages as e:
            response = error_page(e.status, e.title, e.advice)
            response.headers["Retry-After"] = "60"
            return response
    parked = slo.take_parked()
    source = parked if parked is not None else request.args
    if "SAMLResponse" in source:
        response = slo.response_arrived(parked)
    else:
        response = slo.request_arrived(parked)
    if parked is not None:
        forget_cookie(response, slo.PARKED_COOKIE, slo.COOKIE_PATH)
    return response


@bp.route("/slo/next")
def logout_next():
    return slo.next_app()
