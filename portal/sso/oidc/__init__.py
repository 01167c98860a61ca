"""The OpenID Provider: discovery, JWKS, authorize, token, userinfo, logout, tile launch.

Protocol work is Authlib's (portal.sso.oidc.server); claims, keys and storage are small pure or
Redis-backed modules; the views only move bytes.
"""
import logging

from flask import Blueprint

bp = Blueprint("oidc", __name__)

# Authlib logs every token response it issues at DEBUG, access and ID tokens included: however a
# deployment sets its root logger, Authlib's records stop at INFO.
logging.getLogger("authlib").setLevel(logging.INFO)

from portal.sso.oidc import authorize, views  # noqa: E402,F401  (registers the routes)
from portal.sso.oidc import backchannel  # noqa: E402
from portal.sso.oidc.server import server  # noqa: E402

bp.record_once(lambda state: server.init_app(state.app))
bp.record_once(lambda state: backchannel.init_app(state.app))
