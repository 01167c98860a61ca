"""The portal's own absolute addresses, as apps and devices must reach it.

The request's Host (or a client-sent X-Forwarded-Host, when PORTAL_TRUSTED_PROXIES trusts one
proxy more than there is) is whatever the client wrote: built into signed SAML messages or
metadata, it would let anyone name an address of their choosing as the portal. So whenever the
portal's public address is configured (PORTAL_OIDC_ISSUER, required in production), addresses
come from it; only a development or test portal with nothing configured answers on the address
it was reached at.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, url_for


def public_url(endpoint: str, **values) -> str:
    """The absolute address of `endpoint` on the portal's configured public address, or on the
    request's when none is configured (development and tests)."""
    base = current_app.config["SETTINGS"].oidc_issuer
    if not base:
        return url_for(endpoint, _external=True, **values)
    # url_for already holds any path prefix the portal is served under; take only the origin.
    origin = urlsplit(base)
    return f"{origin.scheme}://{origin.netloc}{url_for(endpoint, **values)}"


def portal_address() -> str:
    """The portal's address as the kiosk program takes it (`--portal`): the public address of
    its front page, without the trailing slash."""
    return public_url("launchpad.tiles").rstrip("/")
