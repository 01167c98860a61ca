"""A real browser between the portal and a real SP web site (python3-saml) on another site:
SP-initiated sign-in through the login form, and a tile launch, both land signed in."""
from __future__ import annotations

import html
import urllib.request
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from tests.serving import PageHandler, start_serving, stop_serving
from tests.sso.conftest import PeerSP, register_and_grant

pytestmark = pytest.mark.browser



@pytest.fixture
def portal_url(live_server):
    return live_server


class SpSite:
    """An app's web site: /login starts SP-initiated SSO, /acs consumes the Response."""

    def __init__(self):
        site = self

        class Handler(PageHandler):
            title = "SP"

            def do_GET(self):
                if self.path.startswith("/login-post"):
                    fields, site.request_id = site.peer.post_login(relay_state=site.base + "/lesson")
                    inputs = "".join(f'<input type=hidden name="{k}" value="{html.escape(v)}">'
                                     for k, v in fields.items())
                    self.page(200, f'<form method=post action="{site.portal}/saml/sso">{inputs}</form>'
                                   "<script>document.forms[0].submit()</script>")
                elif self.path.startswith("/login"):
                    url, site.request_id = site.peer.redirect_login(relay_state=site.base + "/lesson")
                    self.send_response(302)
                    self.send_header("Location", site.portal + url)
                    self.end_headers()
                else:
                    self.page(404, "not here")

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                result = site.peer.consume(form.get("SAMLResponse", ""), site.request_id)
                site.request_id = None
                if result.is_authenticated():
                    attrs = result.get_attributes()
                    self.page(200, f"<h1>Signed in</h1><p id=name>{html.escape(attrs['given_name'][0])}</p>"
                                   f"<p id=relay>{html.escape(form.get('RelayState', ''))}</p>")
                else:
                    self.page(403, f"<h1>Refused</h1><p>{html.escape(str(result.get_last_error_reason()))}</p>")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # "localhost" is another site than the portal's 127.0.0.1, as a real app would be.
        self.base = f"http://localhost:{self.server.server_port}"
        self.request_id = None
        self.peer = self.portal = None

    def start(self, portal: str):
        self.portal = portal
        metadata = urllib.request.urlopen(portal + "/saml/metadata", timeout=5).read().decode()
        self.peer = PeerSP(metadata, entity_id=self.base + "/metadata", acs=self.base + "/acs")
        self.thread = start_serving(self.server, "app-site")

    def stop(self):
        stop_serving(self.server, self.thread)


@pytest.fixture
def sp_site():
    site = SpSite()
    yield site
    site.stop()


@pytest.fixture
def saml_site(roster, portal_url, sp_site):
    from portal.db import db
    school = roster.school("maple")
    roster.person("ada.lovelace", schools=[school])
    sp_site.start(portal_url)
    register_and_grant(db.session, name="Story Time", school=school, entity_id=sp_site.base + "/metadata",
                       acs_urls=[sp_site.base + "/acs"], relay_state=sp_site.base + "/from-tile")
    return sp_site


def sign_in_form(page):
    page.fill("#username", "ada.lovelace")
    page.fill("#password", "correct horse battery")
    page.click("button.primary")


def test_sp_initiated_sign_in_lands_in_the_app(page, portal_url, saml_site):
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(saml_site.base + "/login")
    page.wait_for_url(portal_url + "/login**")
    assert "SAMLRequest" not in page.url
    sign_in_form(page)
    page.wait_for_url(saml_site.base + "/acs")
    assert page.inner_text("h1") == "Signed in"
    assert page.inner_text("#name") == "Ada"
    assert page.inner_text("#relay") == saml_site.base + "/lesson"
    assert not [e for e in errors if "Content Security Policy" in e]

    # Signed in now: the next SP-initiated sign-in goes straight through.
    page.goto(saml_site.base + "/login")
    page.wait_for_url(saml_site.base + "/acs")
    assert page.inner_text("h1") == "Signed in"


def test_tile_launch_lands_in_the_app(page, portal_url, saml_site):
    page.goto(portal_url + "/")
    sign_in_form(page)
    page.wait_for_url(portal_url + "/")
    page.click("a.tile[data-app=story-time]")
    page.wait_for_url(saml_site.base + "/acs")
    assert page.inner_text("h1") == "Signed in"
    assert page.inner_text("#relay") == saml_site.base + "/from-tile"


def test_cross_site_post_binding_finds_the_signed_in_student(page, portal_url, saml_site):
    # The app's form posts cross-site, so our SameSite=Lax session cookie stays behind; the
    # portal parks the request and a same-site GET picks the session up again.
    page.goto(portal_url + "/")
    sign_in_form(page)
    page.wait_for_url(portal_url + "/")
    page.goto(saml_site.base + "/login-post")
    page.wait_for_url(saml_site.base + "/acs")
    assert page.inner_text("h1") == "Signed in"
    assert page.inner_text("#relay") == saml_site.base + "/lesson"
