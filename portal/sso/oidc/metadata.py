"""The OpenID Provider's discovery document (OpenID Connect Discovery 1.0). Pure."""
from __future__ import annotations

from portal.sso.oidc.claims import CLAIM_NAMES, SCOPES
from portal.sso.oidc.clients import AUTH_METHODS
from portal.sso.oidc.keys import ALG


def provider_metadata(issuer: str, *, authorize: str, token: str, userinfo: str, jwks: str,
                      end_session: str) -> dict:
    """Describe what this provider supports: only what it really does."""
    return {
        "issuer": issuer,
        "authorization_endpoint": authorize,
        "token_endpoint": token,
        "userinfo_endpoint": userinfo,
        "jwks_uri": jwks,
        "end_session_endpoint": end_session,
        # OpenID Connect Back-Channel Logout 1.0, with sid, for apps that register a URI for it.
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": [ALG],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "at_hash", "sid",
                             *CLAIM_NAMES.values()],
        # consent: the district's grant is the consent; select_account: a sign-in (README).
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": True,   # RFC 9207
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }
