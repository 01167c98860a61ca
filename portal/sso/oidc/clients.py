"""OpenID Connect clients: registering an app, and the App as Authlib sees a client.

An OIDC app is an App of kind oidc: App.client_id holds its client_id, App.settings holds its
redirect URIs, login URI, scopes, back-channel logout URI and the SHA-256 of its secret (the
secret itself is shown once).
"""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, fields
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from portal import audit
from portal.admin.services import (
    AdminError, check_name_free, check_url, checked_app_name, checked_icon, find_app, slugify,
)
from portal.models import App, AppKind
from portal.sso.oidc.claims import SCOPES, hash_secret, scope_list

AUTH_METHODS = ("client_secret_basic", "client_secret_post")
_TEST_HOSTS = {"127.0.0.1", "localhost", "::1"}


def check_client_url(url: str, *, what: str) -> str:
    """Return `url` if an app may use it: https, or http on this machine for testing."""
    if "*" in url:
        raise AdminError(f"{what} must be one exact address (no wildcards): {url!r}")
    parts = urlsplit(check_url(url, what=what))
    local = parts.scheme == "http" and parts.hostname in _TEST_HOSTS
    if not parts.netloc or not (parts.scheme == "https" or local):
        raise AdminError(
            f"{what} must start with https:// (http:// only for 127.0.0.1 or localhost): {url!r}")
    if parts.fragment or "#" in url:
        raise AdminError(f"{what} may not have a #fragment: {url!r}")
    if parts.username or parts.password:
        raise AdminError(f"{what} may not carry a user name or password: {url!r}")
    return url


def _unique(values) -> list[str]:
    return list(dict.fromkeys(values))


def checked_redirect_uris(redirect_uris) -> list[str]:
    """The redirect URIs an app may use, each once, or AdminError saying why not."""
    if not redirect_uris:
        raise AdminError("give at least one --redirect-uri")
    return _unique(check_client_url(u, what="redirect URI") for u in redirect_uris)


def _site_of(login_uri: str) -> str:
    """Where a tile launch lands when add-oidc is given no --target-link-uri: the login URI's site."""
    parts = urlsplit(login_uri)
    return f"{parts.scheme}://{parts.netloc}/"


def register_client(db: Session, name: str, *, redirect_uris: list[str], login_uri: str,
                    scopes: list[str] | None = None, post_logout_redirect_uris: list[str] = (),
                    target_link_uri: str | None = None, icon: str = "",
                    backchannel_logout_uri: str | None = None) -> tuple[App, str]:
    """Add an OIDC app; return it and its client secret (shown once, stored only hashed)."""
    name = checked_app_name(name)
    redirect_uris = checked_redirect_uris(redirect_uris)
    check_client_url(login_uri, what="login URI")
    post_logout = _unique(check_client_url(u, what="post-logout redirect URI")
                          for u in post_logout_redirect_uris)
    if backchannel_logout_uri:
        check_client_url(backchannel_logout_uri, what="back-channel logout URI")
    if target_link_uri:
        check_client_url(target_link_uri, what="target link URI")
    else:
        target_link_uri = _site_of(login_uri)
    icon = checked_icon(icon)

    wanted = scope_list(" ".join(scopes)) if scopes else list(SCOPES)
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise AdminError(f"unknown scope {unknown[0]!r}; scopes are: {', '.join(SCOPES)}")
    wanted = ["openid"] + [s for s in wanted if s != "openid"]

    slug = slugify(name)
    check_name_free(db, name, slug)

    client_id = secrets.token_urlsafe(18)
    client_secret = secrets.token_urlsafe(32)
    app = App(slug=slug, name=name, kind=AppKind.oidc, client_id=client_id, url=target_link_uri,
              icon=icon, settings={
                  "redirect_uris": redirect_uris,
                  "login_uri": login_uri,
                  "post_logout_redirect_uris": post_logout,
                  "scopes": wanted,
                  "client_secret_sha256": hash_secret(client_secret),
              })
    if backchannel_logout_uri:
        app.settings["backchannel_logout_uri"] = backchannel_logout_uri
    db.add(app)
    db.commit()
    return app, client_secret


def oidc_app(db: Session, name: str) -> App:
    """The OIDC app named `name` (or slug), or AdminError."""
    app = find_app(db, name)
    if app.kind is not AppKind.oidc:
        raise AdminError(f"{app.name} does not sign in with OpenID Connect: it has no client secret "
                         "or OpenID addresses")
    return app


def new_client_secret(db: Session, name: str) -> tuple[App, str]:
    """Give the OIDC app named `name` a new client secret (stored only hashed, as register_client
    stores it); the old one stops working at once. Returns the app and the secret, shown once."""
    app = oidc_app(db, name)
    client_secret = secrets.token_urlsafe(32)
    app.settings = {**(app.settings or {}), "client_secret_sha256": hash_secret(client_secret)}
    audit.record("app_secret_replaced", app=app, commit=False)
    db.commit()
    return app, client_secret


def set_client_addresses(db: Session, name: str, *, redirect_uris=(),
                         login_uri: str | None = None) -> App:
    """Replace the redirect URIs (when given) and the login URI (when given) of the OIDC app named
    `name` (or slug), checked as register_client checks them. A tile launch that landed on the
    old login URI's site (add-oidc without --target-link-uri) lands on the new one's."""
    app = oidc_app(db, name)
    if not redirect_uris and login_uri is None:
        raise AdminError("say what to change: --redirect-uri (repeat for several) or --login-uri")
    settings = dict(app.settings or {})
    changed = {}
    if redirect_uris:
        changed["redirect_uris"] = checked_redirect_uris(redirect_uris)
    if login_uri is not None:
        changed["login_uri"] = check_client_url(login_uri, what="login URI")
        if app.url == _site_of(settings.get("login_uri", "")):
            app.url = _site_of(login_uri)
    app.settings = {**settings, **changed}
    audit.record("app_settings_changed", app=app, commit=False, data=changed)
    db.commit()
    return app


def set_backchannel_logout_uri(db: Session, name: str, uri: str | None) -> App:
    """Tell the OIDC app named `name` (or slug) when a student's portal session ends, at `uri`
    (None or "": no longer)."""
    app = find_app(db, name)
    if app.kind is not AppKind.oidc:
        raise AdminError(f"{app.name} does not sign in with OpenID Connect or SAML: it has no "
                         "sessions to end")
    settings = dict(app.settings or {})
    if uri:
        settings["backchannel_logout_uri"] = check_client_url(uri, what="back-channel logout URI")
    else:
        settings.pop("backchannel_logout_uri", None)
    app.settings = settings
    db.commit()
    return app


@dataclass(frozen=True)
class ClientApp:
    """The columns of an App the OIDC endpoints read (what portal.access and audit use of it)."""

    id: int
    slug: str
    name: str
    client_id: str
    settings: dict
    released_fields: list


# Built once with a bound parameter, as portal.access does: every token, userinfo and authorize
# request looks its client up. Plain columns, not an ORM App: the lookup is read fresh on every
# request (a removed app or a new secret counts at once), so it has to be cheap, and the ORM's
# object and its icon cost twice the query.
_FIND_ANY_CLIENT = (select(*(getattr(App, f.name) for f in fields(ClientApp)))
                    .where(App.client_id == bindparam("client_id"), App.kind == AppKind.oidc))
_FIND_CLIENT = _FIND_ANY_CLIENT.where(App.removed_at.is_(None))


def find_client(db: Session, client_id: str | None, *, removed: bool = False) -> "Client | None":
    """Return the OIDC client with this client_id, or None. A removed app (portal apps remove) is
    none, so that its codes, tokens and userinfo stop at once; only with `removed` is it found
    (told that a student's session ended, as a SAML app is)."""
    # The id may come from a Basic Authorization header, which no form check has read: a NUL
    # there cannot even be compared by PostgreSQL.
    if not client_id or len(client_id) > 255 or "\x00" in client_id:
        return None
    row = db.connection().execute(_FIND_ANY_CLIENT if removed else _FIND_CLIENT,
                                  {"client_id": client_id}).first()
    return Client(ClientApp(*row)) if row is not None else None


class Client(ClientMixin):
    """An App of kind oidc, seen as an OAuth 2 client."""

    # Every client signs ID tokens with RS256; Authlib reads this attribute.
    id_token_signed_response_alg = "RS256"

    def __init__(self, app: ClientApp):
        self.app = app
        self.client_id = app.client_id
        self.settings = dict(app.settings or {})

    @property
    def client_metadata(self) -> dict:
        return {"post_logout_redirect_uris": list(self.settings.get("post_logout_redirect_uris", []))}

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self):
        # OpenID Connect requires redirect_uri in every request: there is no default.
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = set(self.settings.get("scopes", ["openid"]))
        return " ".join(s for s in scope_list(scope) if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string match, nothing else (no prefixes, no normalising).
        return redirect_uri in self.settings.get("redirect_uris", [])

    def check_client_secret(self, client_secret: str) -> bool:
        expected = self.settings.get("client_secret_sha256", "")
        return bool(expected) and hmac.compare_digest(hash_secret(client_secret), expected)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint == "token":
            return method in AUTH_METHODS
        return True

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"
