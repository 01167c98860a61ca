"""OIDC test fixtures and helpers (no tests here): a registered, granted app; the portal served
from a real server thread; a browser (requests) that signs in through the real form."""
from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests

REDIRECT = "https://learn.test/oidc/callback"
OTHER_REDIRECT = "https://learn.test/oidc/callback-2"
LOGIN_URI = "https://learn.test/oidc/login"
POST_LOGOUT = "https://learn.test/signed-out"
PASSWORD = "correct horse battery"


@dataclass
class Credentials:
    """What an app holds after `portal apps add-oidc`."""

    client_id: str
    client_secret: str = ""


@dataclass
class OidcWorld:
    school: object
    section: object
    student: object
    app: object
    client_id: str
    client_secret: str


def register_oidc_app(db_session, name="Math Garden", *, school=None, release=None, **kwargs):
    """Register an OIDC app (as `portal apps add-oidc` does), grant it to a school, release fields."""
    from portal.admin.services import grant_app, release_fields
    from portal.sso.oidc.clients import register_client
    kwargs.setdefault("redirect_uris", [REDIRECT, OTHER_REDIRECT])
    kwargs.setdefault("login_uri", LOGIN_URI)
    kwargs.setdefault("post_logout_redirect_uris", [POST_LOGOUT])
    app, secret = register_client(db_session, name, **kwargs)
    if school is not None:
        grant_app(db_session, app.slug, school=school.sourced_id)
    if release is not None:
        release_fields(db_session, app.slug, list(release))
    return app, secret


@pytest.fixture
def oidc_world(app, roster) -> OidcWorld:
    from portal.db import db
    school = roster.school("sch-maple", name="Maple Elementary")
    section = roster.section(school, "sec-4")
    student = roster.person("ada.lovelace", schools=[school], sections=[section], grades="02")
    registered, secret = register_oidc_app(
        db.session, school=school, release=["given_name", "display_name", "grade", "school", "sections"])
    return OidcWorld(school, section, student, registered, registered.client_id, secret)


@pytest.fixture
def live_portal(live_server):
    """The portal served by a real HTTP server on 127.0.0.1 (tests/conftest.py's live_server)."""
    return live_server


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_url(world: OidcWorld, *, base: str = "", challenge: str | None = None, **params) -> str:
    """An authorization request; pass a parameter as None to leave it out."""
    query = {
        "response_type": "code", "client_id": world.client_id, "redirect_uri": REDIRECT,
        "scope": "openid profile roster", "state": "st-" + secrets.token_hex(4),
        "nonce": "n-" + secrets.token_hex(8), "code_challenge": challenge or pkce_pair()[1],
        "code_challenge_method": "S256",
    }
    query.update(params)
    return f"{base}/oidc/authorize?" + urlencode({k: v for k, v in query.items() if v is not None})


def query_of(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def get_code(client, world: OidcWorld, **params) -> tuple[str, str, dict]:
    """With a signed-in Flask test client: ask for a code; return (code, verifier, sent params)."""
    verifier, challenge = pkce_pair()
    url = authorize_url(world, challenge=challenge, **params)
    response = client.get(url)
    assert response.status_code == 302, response.get_data(as_text=True)[:400]
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?"), location
    sent = query_of(url)
    got = query_of(location)
    assert got["state"] == sent["state"]
    return got["code"], verifier, sent


def exchange(client, world: OidcWorld, code: str, verifier: str | None, *, secret: str | None = None,
             redirect_uri: str = REDIRECT, post: bool = False):
    """POST the code to the token endpoint as the app would (client_secret_basic by default)."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier is not None:
        form["code_verifier"] = verifier
    secret = world.client_secret if secret is None else secret
    headers = {}
    if post:
        form.update(client_id=world.client_id, client_secret=secret)
    else:
        pair = base64.b64encode(f"{world.client_id}:{secret}".encode()).decode()
        headers["Authorization"] = f"Basic {pair}"
    return client.post("/oidc/token", data=form, headers=headers)


class Browser:
    """A person's browser against the live portal: follows redirects by hand, signs in by form."""

    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()

    def sign_in(self, username: str = "ada.lovelace", password: str = PASSWORD, next_url: str | None = None):
        page = self.http.get(f"{self.base}/login", params={"next": next_url} if next_url else None)
        form = {"username": username, "password": password, "csrf_token": csrf_of(page.text)}
        if next_url:
            form["next"] = next_url
        response = self.http.post(f"{self.base}/login", data=form, allow_redirects=False)
        assert response.status_code == 302, response.text[:400]
        return urljoin(self.base, response.headers["Location"])

    def follow(self, url: str, *, until: str = REDIRECT, username: str = "ada.lovelace",
               password: str = PASSWORD, hops: int = 8) -> str:
        """Follow redirects from `url`, signing in when sent to /login, until one leaves for `until`."""
        for _ in range(hops):
            response = self.http.get(url, allow_redirects=False)
            assert response.status_code == 302, f"{url}: {response.status_code} {response.text[:300]}"
            location = urljoin(url, response.headers["Location"])
            if location.startswith(until):
                return location
            parts = urlsplit(location)
            if parts.path == "/login":
                location = self.sign_in(username, password, next_url=query_of(location).get("next"))
            url = location
        raise AssertionError("too many redirects")
