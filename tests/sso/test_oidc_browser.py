"""A real browser between the portal and an app's web site on another site, for what only a
browser decides: the portal's SameSite=Lax session cookie stays behind on a cross-site POST, so an
authorization or logout request an app sends by POST (OpenID Connect Core 3.1.2.1, RP-Initiated
Logout 1.0 section 2) must be read again by a same-site GET, which carries it."""
from __future__ import annotations

import html
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.serving import PageHandler, start_serving, stop_serving
from tests.sso.test_oidc_support import PASSWORD, pkce_pair, register_oidc_app

pytestmark = pytest.mark.browser


class AppSite:
    """An app's web site: a page made by post_form sends the browser to the portal by an
    auto-submitting form; any other page (/cb, /bye) shows its own address."""

    def __init__(self):
        site = self
        self.portal = self.client_id = self.client_secret = None
        self.forms: dict[str, tuple[str, dict]] = {}
        self.posted: list[tuple[str, str | None, str | None, dict]] = []

        class Handler(PageHandler):
            def do_GET(self):
                path = urlsplit(self.path).path
                if path in site.forms:
                    action, fields = site.forms[path]
                    inputs = "".join(f'<input type=hidden name="{html.escape(k)}" value="{html.escape(v)}">'
                                     for k, v in fields.items())
                    self.page(200, f'<form method=post action="{site.portal}{action}">{inputs}</form>'
                                   "<script>document.forms[0].submit()</script>")
                else:
                    self.page(200, f"<h1>App</h1><p id=path>{html.escape(self.path)}</p>")

            def do_POST(self):
                # What a form_post answer brought: the body, its type and any Referer.
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                site.posted.append((self.path, self.headers.get("Content-Type"), self.headers.get("Referer"),
                                    {k: v[0] for k, v in parse_qs(body).items()}))
                self.page(200, f"<h1>App</h1><p id=path>{html.escape(self.path)}</p>")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # "localhost" is another site than the portal's 127.0.0.1, as a real app would be.
        self.base = f"http://localhost:{self.server.server_port}"
        self.thread = start_serving(self.server, "app-site")

    def post_form(self, name: str, action: str, fields: dict) -> str:
        """The address of a page of the app that posts `fields` to the portal's `action`."""
        self.forms[f"/{name}"] = (action, fields)
        return f"{self.base}/{name}"

    def stop(self):
        stop_serving(self.server, self.thread)


@pytest.fixture
def app_site(live_server, roster):
    from portal.db import db
    site = AppSite()
    school = roster.school("sch-maple")
    roster.person("ada.lovelace", schools=[school])
    registered, secret = register_oidc_app(db.session, "Math Garden", school=school,
                                           redirect_uris=[site.base + "/cb"],
                                           post_logout_redirect_uris=[site.base + "/bye"])
    db.session.commit()
    site.portal, site.client_id, site.client_secret = live_server, registered.client_id, secret
    yield site
    site.stop()


def sign_in(page, portal):
    page.goto(portal + "/login")
    page.fill("#username", "ada.lovelace")
    page.fill("#password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(portal + "/")


def signed_in(page, portal) -> bool:
    return page.context.request.get(portal + "/", max_redirects=0).status == 200


def authorization(site: AppSite, **extra) -> dict:
    fields = {"response_type": "code", "client_id": site.client_id, "redirect_uri": site.base + "/cb",
              "scope": "openid", "state": "st-1", "code_challenge": pkce_pair()[1],
              "code_challenge_method": "S256"}
    fields.update(extra)
    return fields


def answer(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def test_an_authorization_request_by_post_finds_the_signed_in_student(page, app_site):
    portal = app_site.portal
    sign_in(page, portal)
    page.goto(app_site.post_form("authorize", "/oidc/authorize", authorization(app_site)))
    page.wait_for_url(app_site.base + "/cb?**")
    assert "code" in answer(page) and answer(page)["state"] == "st-1"
    # The student is still signed in at the portal: no anonymous session replaced theirs.
    assert signed_in(page, portal)


def test_prompt_none_by_post_finds_the_signed_in_student(page, app_site):
    sign_in(page, app_site.portal)
    page.goto(app_site.post_form("authorize-none", "/oidc/authorize", authorization(app_site, prompt="none")))
    page.wait_for_url(app_site.base + "/cb?**")
    assert "error" not in answer(page) and "code" in answer(page)


def id_token(page, site: AppSite) -> str:
    verifier, challenge = pkce_pair()
    query = urlencode(authorization(site, code_challenge=challenge, nonce="n-1"))
    page.goto(f"{site.portal}/oidc/authorize?{query}")
    page.wait_for_url(site.base + "/cb?**")
    token = requests.post(f"{site.portal}/oidc/token", auth=(site.client_id, site.client_secret), data={
        "grant_type": "authorization_code", "code": answer(page)["code"], "redirect_uri": site.base + "/cb",
        "code_verifier": verifier}, timeout=5)
    return token.json()["id_token"]


def test_a_logout_request_by_post_signs_the_student_out(page, app_site):
    portal = app_site.portal
    sign_in(page, portal)
    hint = id_token(page, app_site)
    addresses = []
    page.on("request", lambda r: addresses.append(r.url))
    page.goto(app_site.post_form("logout", "/oidc/logout", {
        "id_token_hint": hint, "post_logout_redirect_uri": app_site.base + "/bye", "state": "bye-1"}))
    page.wait_for_url(app_site.base + "/bye?**")
    assert answer(page) == {"state": "bye-1"}
    assert not signed_in(page, portal)
    # The ID token the app posted went into no address (the browser's history keeps those).
    assert not [address for address in addresses if hint in address]


def test_a_form_post_answer_submits_itself_to_the_redirect_uri(page, app_site):
    # response_mode=form_post: the browser runs the page's one script under its CSP and posts the
    # code to the redirect URI, sending no Referer; the code goes into no address.
    portal = app_site.portal
    sign_in(page, portal)
    verifier, challenge = pkce_pair()
    addresses = []
    page.on("request", lambda r: addresses.append(r.url))
    query = urlencode(authorization(app_site, code_challenge=challenge, nonce="n-1", response_mode="form_post"))
    page.goto(f"{portal}/oidc/authorize?{query}")
    page.wait_for_url(app_site.base + "/cb")
    assert len(app_site.posted) == 1
    path, content_type, referer, fields = app_site.posted[0]
    assert path == "/cb" and content_type == "application/x-www-form-urlencoded" and referer is None
    assert set(fields) == {"code", "state", "iss"} and fields["state"] == "st-1"
    assert not [address for address in addresses if fields["code"] in address]
    token = requests.post(f"{portal}/oidc/token", auth=(app_site.client_id, app_site.client_secret), data={
        "grant_type": "authorization_code", "code": fields["code"], "redirect_uri": app_site.base + "/cb",
        "code_verifier": verifier}, timeout=5)
    assert token.status_code == 200 and token.json()["id_token"]
