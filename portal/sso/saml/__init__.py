"""SAML 2.0 identity provider: metadata, SP- and IdP-initiated SSO, signed responses.

Pure parts: requests (read and check AuthnRequests), responses (build and sign), metadata,
registry (register an app). Flask parts: flows (session, database, Redis) and views.
"""
from flask import Blueprint

bp = Blueprint("saml", __name__, url_prefix="/saml")

from portal.sso.saml import views  # noqa: E402,F401
from portal.sso.saml.flows import idp_initiated_launch  # noqa: E402,F401
from portal.sso.saml.registry import register_sp  # noqa: E402,F401
from portal.sso.saml.responses import issue_response  # noqa: E402,F401
