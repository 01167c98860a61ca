"""Single sign-on: the SAML 2.0 identity provider (portal.sso.saml) and the OpenID Provider (portal.sso.oidc)."""
from __future__ import annotations

from portal.errors import PortalError, tell


class SigningUnavailable(PortalError):
    """The portal has no usable signing key (the log says which file and why): no app can be
    signed in to until an administrator mends it; nothing was half done."""

    status = 503
    title = "Signing in to apps is not working right now"
    advice = tell("Try again in a few minutes. If it keeps happening, tell {whom}.")
