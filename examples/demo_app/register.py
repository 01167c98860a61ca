"""Register the demo app in a portal: once as a SAML service provider, once as an OIDC client.

Runs inside the portal (`portal dev` calls it, so do the tests), through the same functions as
`portal apps add-saml`, `add-oidc`, `grant` and `release`. Safe to repeat: apps that exist are
left as they are. The OIDC client secret is kept only in a file of mode 0600 (the portal keeps
its hash); when that file is lost, the client gets a new secret.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

SAML_NAME = "Demo Reading (SAML)"
OIDC_NAME = "Demo Math (OIDC)"
# The SAML app gets the portal's default release (given name, family name initial); the OIDC app
# gets a few fields more, so the two pages show the difference.
OIDC_RELEASE = ["given_name", "family_name_initial", "grade", "school"]


@dataclass(frozen=True)
class DemoCredentials:
    """What the demo app process needs to know about its registrations."""

    client_id: str
    client_secret: str
    saml_entity_id: str

    def write(self, path: Path) -> None:
        """Write to `path` with mode 0600 (replacing it in one step)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".demo_app.")  # mkstemp: mode 0600
        with os.fdopen(fd, "w") as f:
            json.dump({"client_id": self.client_id, "client_secret": self.client_secret,
                       "saml_entity_id": self.saml_entity_id}, f)
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> "DemoCredentials | None":
        try:
            data = json.loads(path.read_text())
            return cls(data["client_id"], data["client_secret"], data.get("saml_entity_id", ""))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def _new_secret(db: Session, app) -> str:
    # The portal keeps only the secret's hash, so a lost secret cannot be read back: replace it.
    import secrets

    from portal.sso.oidc.claims import hash_secret
    secret = secrets.token_urlsafe(32)
    app.settings = {**(app.settings or {}), "client_secret_sha256": hash_secret(secret)}
    db.commit()
    return secret


def register_demo_apps(db: Session, base_url: str, *, credentials_path: Path,
                       school: str | None = None) -> DemoCredentials:
    """Make sure both registrations exist (granted to `school`, a sourcedId); return credentials."""
    from portal.admin.services import grant_app, release_fields
    from portal.models import App
    from portal.sso.oidc.clients import Client, register_client, set_backchannel_logout_uri
    from portal.sso.saml import register_sp
    from portal.sso.saml.registry import set_slo_url

    base_url = base_url.rstrip("/")
    saml = db.scalar(select(App).where(App.name == SAML_NAME))
    if saml is None:
        saml = register_sp(db, SAML_NAME, entity_id=f"{base_url}/saml/metadata",
                           acs_urls=[f"{base_url}/saml/acs"], relay_state=f"{base_url}/",
                           slo_url=f"{base_url}/saml/slo")
        if school:
            grant_app(db, saml.slug, school=school)
    elif (saml.settings or {}).get("slo_url") != f"{base_url}/saml/slo":
        # Registered before the demo app took part in Single Logout (or elsewhere).
        set_slo_url(db, saml.slug, f"{base_url}/saml/slo")

    oidc = db.scalar(select(App).where(App.name == OIDC_NAME))
    saved = DemoCredentials.read(credentials_path)
    if oidc is None:
        oidc, secret = register_client(
            db, OIDC_NAME, redirect_uris=[f"{base_url}/oidc/callback"],
            login_uri=f"{base_url}/oidc/login", post_logout_redirect_uris=[f"{base_url}/"],
            backchannel_logout_uri=f"{base_url}/oidc/backchannel-logout")
        if school:
            grant_app(db, oidc.slug, school=school)
        release_fields(db, oidc.slug, OIDC_RELEASE)
    elif saved is not None and saved.client_id == oidc.client_id \
            and Client(oidc).check_client_secret(saved.client_secret):
        secret = saved.client_secret
    else:
        secret = _new_secret(db, oidc)

    if (oidc.settings or {}).get("backchannel_logout_uri") != f"{base_url}/oidc/backchannel-logout":
        # Registered before the demo app listened for the portal's sign-outs (or elsewhere).
        set_backchannel_logout_uri(db, oidc.slug, f"{base_url}/oidc/backchannel-logout")

    credentials = DemoCredentials(oidc.client_id, secret, saml.client_id)
    if credentials != saved:
        credentials.write(credentials_path)
    return credentials
