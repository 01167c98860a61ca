"""OAuth 2.0 Form Post Response Mode (response_mode=form_post), as ASP.NET Core's OpenIdConnect
handler asks for it by default: the authorization response, code or error, comes to the app as a
form the browser posts to the exact redirect URI, and none of it goes into an address.

The app is Authlib's requests client over real HTTP; the page is read with the standard
library's HTML parser, as a browser would read the form."""
from __future__ import annotations

import base64
import hashlib
import re
import secrets
from html import unescape
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import requests

from tests.sso.test_oidc_flow import EXPECTED_SCOPE, app_client, discover, verified_id_token
from tests.sso.test_oidc_support import (  # noqa: F401  (fixtures)
    REDIRECT, Browser, authorize_url, live_portal, oidc_world, query_of,
)


class _Page(HTMLParser):
    """The forms, hidden fields, scripts and every address (href, src, action) of a page."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self.scripts: list[str] = []
        self.addresses: list[str] = []
        self._in_script = False
        self.inline_handlers: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.addresses += [attrs[name] for name in ("href", "src", "action") if attrs.get(name)]
        self.inline_handlers += [name for name in attrs if name.startswith("on")]
        if tag == "form":
            self.forms.append({"method": attrs.get("method", "get"), "action": attrs.get("action"),
                               "enctype": attrs.get("enctype"), "fields": []})
        elif tag == "input" and self.forms:
            self.forms[-1]["fields"].append((attrs["name"], attrs.get("value", "")))
        elif tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def read_form_post(response) -> tuple[str, dict, _Page]:
    """The form_post page's one form: (its action, its fields); checks how it is served."""
    assert response.status_code == 200, response.text[:300]
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = _Page()
    page.feed(response.text)
    assert len(page.forms) == 1, response.text[:500]
    form = page.forms[0]
    assert form["method"].lower() == "post" and form["enctype"] in (None, "application/x-www-form-urlencoded")
    names = [name for name, _ in form["fields"]]
    assert len(names) == len(set(names))
    # Its one script, allowed by its hash and no other way; nothing inline besides.
    assert len(page.scripts) == 1 and not page.inline_handlers
    digest = base64.b64encode(hashlib.sha256(page.scripts[0].encode()).digest()).decode()
    csp = response.headers["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]*)", csp).group(1).split()
    assert script_src == [f"'sha256-{digest}'"]
    assert "https:" in re.search(r"form-action ([^;]*)", csp).group(1).split()
    return form["action"], dict(form["fields"]), page


def follow_to_form(browser: Browser, url: str, *, hops: int = 8):
    """Follow the portal's redirects, signing in when sent to /login, until a page answers."""
    for _ in range(hops):
        response = browser.http.get(url, allow_redirects=False)
        if response.status_code != 302:
            return response
        location = urljoin(url, response.headers["Location"])
        assert not location.startswith(REDIRECT), location   # never by redirect with form_post
        if urlsplit(location).path == "/login":
            location = browser.sign_in(next_url=query_of(location).get("next"))
        url = location
    raise AssertionError("too many redirects")


def assert_no_secret_in_addresses(page: _Page, response, *secrets_: str):
    for secret in secrets_:
        assert all(secret not in address for address in page.addresses)
        assert all(secret not in hop.headers.get("Location", "") for hop in response.history)
        assert secret not in response.url


def test_code_flow_with_form_post(live_portal, oidc_world):
    config = discover(live_portal)
    assert config["response_modes_supported"] == ["query", "form_post"]
    oauth = app_client(oidc_world, config)
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, state = oauth.create_authorization_url(config["authorization_endpoint"], code_verifier=verifier,
                                                nonce=nonce, response_mode="form_post")
    browser = Browser(live_portal)
    browser.sign_in()
    response = browser.http.get(url, allow_redirects=False)
    action, fields, page = read_form_post(response)
    assert action == REDIRECT
    assert set(fields) == {"code", "state", "iss"}
    assert fields["state"] == state and fields["iss"] == config["issuer"]
    assert_no_secret_in_addresses(page, response, fields["code"])
    # The app reads the posted form and exchanges the code.
    token = oauth.fetch_token(config["token_endpoint"], code=fields["code"], code_verifier=verifier)
    assert token["scope"] == EXPECTED_SCOPE
    claims = verified_id_token(token["id_token"], config, oidc_world.client_id, nonce)
    me = requests.get(config["userinfo_endpoint"], timeout=5,
                      headers={"Authorization": f"Bearer {token['access_token']}"}).json()
    assert me["sub"] == claims["sub"]


def test_form_post_survives_signing_in_first(live_portal, oidc_world):
    config = discover(live_portal)
    oauth = app_client(oidc_world, config)
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, state = oauth.create_authorization_url(config["authorization_endpoint"], code_verifier=verifier,
                                                nonce=nonce, response_mode="form_post")
    response = follow_to_form(Browser(live_portal), url)     # signed out: the request waits for it
    action, fields, _ = read_form_post(response)
    assert action == REDIRECT and fields["state"] == state
    token = oauth.fetch_token(config["token_endpoint"], code=fields["code"], code_verifier=verifier)
    verified_id_token(token["id_token"], config, oidc_world.client_id, nonce)


def test_form_post_survives_a_request_sent_by_post(live_portal, oidc_world):
    config = discover(live_portal)
    oauth = app_client(oidc_world, config)
    verifier = secrets.token_urlsafe(48)
    url, state = oauth.create_authorization_url(config["authorization_endpoint"], code_verifier=verifier,
                                                nonce="n", response_mode="form_post")
    browser = Browser(live_portal)
    browser.sign_in()
    sent = browser.http.post(config["authorization_endpoint"], data=query_of(url), allow_redirects=False)
    assert sent.status_code == 303
    action, fields, _ = read_form_post(follow_to_form(browser, urljoin(live_portal, sent.headers["Location"])))
    assert action == REDIRECT and fields["state"] == state and fields["code"]


def test_prompt_none_signed_out_posts_login_required(live_portal, oidc_world):
    response = Browser(live_portal).http.get(
        authorize_url(oidc_world, base=live_portal, prompt="none", state="s1", response_mode="form_post"),
        allow_redirects=False)
    action, fields, _ = read_form_post(response)
    assert action == REDIRECT
    assert fields == {"error": "login_required", "state": "s1", "iss": discover(live_portal)["issuer"]}


def test_errors_after_the_redirect_uri_is_checked_are_posted(live_portal, oidc_world):
    browser = Browser(live_portal)
    browser.sign_in()
    for params, error in (({"scope": "profile"}, "invalid_scope"),
                          ({"max_age": "soon"}, "invalid_request"),
                          ({"response_type": "token"}, "unsupported_response_type")):
        response = browser.http.get(authorize_url(oidc_world, base=live_portal, state="k", response_mode="form_post",
                                                  **params), allow_redirects=False)
        action, fields, _ = read_form_post(response)
        assert action == REDIRECT and fields["error"] == error and fields["state"] == "k"
        assert "code" not in fields


def test_an_unknown_response_mode_is_refused(live_portal, oidc_world):
    browser = Browser(live_portal)
    browser.sign_in()
    for mode in ("fragment", "form_post.jwt", "web_message"):
        response = browser.http.get(authorize_url(oidc_world, base=live_portal, state="k", response_mode=mode),
                                    allow_redirects=False)
        assert response.status_code == 302
        answer = query_of(response.headers["Location"])
        assert response.headers["Location"].startswith(REDIRECT + "?")
        assert answer["error"] == "invalid_request" and "code" not in answer


def test_unregistered_redirect_uri_with_form_post_gets_the_portal_page(live_portal, oidc_world):
    browser = Browser(live_portal)
    browser.sign_in()
    for params in ({"redirect_uri": "https://evil.test/cb"}, {"client_id": "nobody"}):
        response = browser.http.get(authorize_url(oidc_world, base=live_portal, response_mode="form_post",
                                                  **params), allow_redirects=False)
        assert response.status_code == 400 and "Location" not in response.headers
        assert "sign-in did not work" in response.text
        page = _Page()
        page.feed(response.text)
        # The portal's own page (its only form is the header's Sign out): nothing goes to an app.
        assert [form["action"] for form in page.forms] == ["/logout"] and not page.scripts
        assert "evil.test" not in response.text and "learn.test" not in response.text


def test_access_denied_is_posted(live_portal, oidc_world):
    from portal.db import db
    from tests.sso.test_oidc_support import register_oidc_app
    other, _ = register_oidc_app(db.session, "Not Granted", redirect_uris=[REDIRECT])
    db.session.commit()
    browser = Browser(live_portal)
    browser.sign_in()
    response = browser.http.get(authorize_url(oidc_world, base=live_portal, client_id=other.client_id, state="k",
                                              response_mode="form_post"), allow_redirects=False)
    action, fields, _ = read_form_post(response)
    assert action == REDIRECT and fields["error"] == "access_denied" and fields["state"] == "k"


def test_form_post_survives_signing_in_again(live_portal, oidc_world):
    # prompt=login while signed in: the "Sign in again" page, then back to the request.
    browser = Browser(live_portal)
    browser.sign_in()
    page = browser.http.get(authorize_url(oidc_world, base=live_portal, prompt="login", state="again",
                                          response_mode="form_post"), allow_redirects=False)
    assert page.status_code == 200 and "Sign in again to open" in page.text
    next_url = unescape(re.search(r'name="next" value="([^"]+)"', page.text).group(1))
    back = browser.sign_in(next_url=next_url)
    action, fields, _ = read_form_post(follow_to_form(browser, back))
    assert action == REDIRECT and fields["state"] == "again" and fields["code"]


def test_form_post_survives_a_posted_id_token_hint_and_signing_in(live_portal, oidc_world):
    from tests.sso.test_oidc_logout import Student
    computer = Student(live_portal)
    computer.sign_in()
    hint = computer.id_token(oidc_world)
    computer.sign_out()
    form = query_of(authorize_url(oidc_world, state="hinted", response_mode="form_post"))
    form["id_token_hint"] = hint
    posted = computer.http.post(f"{live_portal}/oidc/authorize", data=form, allow_redirects=False)
    assert posted.status_code == 303 and hint not in posted.headers["Location"]
    response = follow_to_form(computer, urljoin(live_portal, posted.headers["Location"]))
    action, fields, page = read_form_post(response)
    assert action == REDIRECT and fields["state"] == "hinted" and fields["code"]
    assert_no_secret_in_addresses(page, response, fields["code"], hint)


def test_discovery_lists_form_post(client):
    modes = client.get("/.well-known/openid-configuration").json["response_modes_supported"]
    assert modes == ["query", "form_post"]
