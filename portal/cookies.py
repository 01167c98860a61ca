"""The portal's own cookies: names a neighbouring site cannot plant, and one way to set, read and
forget them.

In production every cookie is Secure, and its name carries a prefix that browsers enforce. A
cookie on / is `__Host-`: Secure, Path=/ and no Domain, so only this very host can have set it,
not a sibling subdomain (a school's web site, say) that could otherwise plant a session or a
device marking for the portal. A cookie scoped to a folder (/saml, /kiosk/) cannot be `__Host-`
and is `__Secure-`: it at least cannot be set over plain http. A development portal on plain
http keeps plain names, since browsers refuse prefixed cookies that are not Secure.

A folder's path is under the address the portal is served at (a portal at /portal has its kiosk
cookie on /portal/kiosk/), or the browser would never send it back.

Cookies set under plain names before the prefixes came are not read: a plain name is exactly
what a sibling subdomain can plant. A classroom device bound before then is bound again when its
kiosk program restarts (README: after upgrading).
"""
from __future__ import annotations

from flask import current_app, request


def prefixed_name(name: str, *, secure: bool, path: str = "/") -> str:
    """`name` as the portal calls the cookie on `path`, Secure or not."""
    if not secure:
        return name
    return ("__Host-" if path == "/" else "__Secure-") + name


def _secure() -> bool:
    return bool(current_app.config["SESSION_COOKIE_SECURE"])


def _path(path: str) -> str:
    return path if path == "/" else request.script_root + path


def cookie_name(name: str, path: str = "/") -> str:
    """The name of the portal's cookie `name` on `path` in this app."""
    return prefixed_name(name, secure=_secure(), path=path)


def read_cookie(name: str, path: str = "/") -> str | None:
    """The value this request carries for the portal's cookie `name` on `path`, if any."""
    return request.cookies.get(cookie_name(name, path))


def set_cookie(response, name: str, value: str, *, max_age: int, path: str = "/") -> None:
    """Set the portal's cookie `name`: HttpOnly, SameSite=Lax, and Secure in production."""
    response.set_cookie(cookie_name(name, path), value, max_age=max_age, path=_path(path),
                        httponly=True, samesite="Lax", secure=_secure())


def forget_cookie(response, name: str, path: str = "/") -> None:
    """Remove the portal's cookie `name`: with the same attributes, or a browser keeps a
    prefixed cookie (it refuses a __Host- or __Secure- cookie, even an expired one, without
    Secure)."""
    response.delete_cookie(cookie_name(name, path), path=_path(path), httponly=True,
                           samesite="Lax", secure=_secure())
