"""The demo learning app (examples/demo_app) against the portal, both served over real HTTP on
127.0.0.1: a tile launch over SAML and one over OpenID Connect each land signed in, and the app's
page shows exactly the fields the district released to that app."""
from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from tests.serving import served

from examples.demo_app.app import create_app as create_demo_app
from examples.demo_app.register import OIDC_NAME, SAML_NAME, DemoCredentials, register_demo_apps
from tests.sso.conftest import read_post_form
from tests.sso.test_oidc_support import PASSWORD, csrf_of

# The claims an ID token carries about the token itself, beside the student's released fields.
PROTOCOL_CLAIMS = {"iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "at_hash", "sid"}


class _LateApp:
    """A WSGI app filled in after its server is listening (the app needs to know its port)."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


class Tables(HTMLParser):
    """Read the demo page's tables: {table id: {row name: [values]}}."""

    def __init__(self, html: str):
        super().__init__()
        self.tables: dict[str, dict[str, list[str]]] = {}
        self._table = self._row = None
        self._in = None  # "th" or "value"
        self._text = ""
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id", ""), {})
        elif tag == "th" and attrs.get("scope") == "row" and self._table is not None:
            self._in, self._text = "th", ""
        elif tag == "span" and attrs.get("class") == "value" and self._row is not None:
            self._in, self._text = "value", ""

    def handle_endtag(self, tag):
        if tag == "th" and self._in == "th":
            self._row = self._text
            self._table[self._row] = []
            self._in = None
        elif tag == "span" and self._in == "value":
            self._table[self._row].append(self._text)
            self._in = None
        elif tag == "table":
            self._table = self._row = None

    def handle_data(self, data):
        if self._in:
            self._text += data


@pytest.fixture
def demo(app, roster, tmp_path):
    """The portal and the demo app, each on its own port; a student of the granted school."""
    from portal.db import db
    school = roster.school("sch-maple", name="Maple Elementary")
    section = roster.section(school, "sec-4")
    student = roster.person("ada.lovelace", schools=[school], sections=[section], grades="02")
    other_school = roster.school("sch-oak", name="Oak Elementary")
    outsider = roster.person("grace.hopper", schools=[other_school], given="Grace", family="Hopper")

    late = _LateApp()
    with served(make_server("127.0.0.1", 0, app, threaded=True), "demo-test-portal") as portal_url, \
            served(make_server("127.0.0.1", 0, late, threaded=True), "demo-test-app") as demo_url:
        credentials = register_demo_apps(db.session, demo_url,
                                         credentials_path=tmp_path / "demo_app.json",
                                         school=school.sourced_id)
        late.app = create_demo_app(portal_url=portal_url, base_url=demo_url,
                                   client_id=credentials.client_id,
                                   client_secret=credentials.client_secret)
        yield type("Demo", (), {"portal": portal_url, "app": demo_url, "student": student,
                                "outsider": outsider, "credentials": credentials})


def _app(name):
    from portal.db import db
    from portal.models import App
    db.session.rollback()  # see what other threads committed
    return db.session.scalar(select(App).where(App.name == name))


def _signed_in_browser(portal_url: str, username: str = "ada.lovelace") -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{portal_url}/login", timeout=5)
    done = browser.post(f"{portal_url}/login", timeout=5, allow_redirects=False, data={
        "username": username, "password": PASSWORD, "csrf_token": csrf_of(page.text)})
    assert done.status_code == 302, done.text[:300]
    return browser


def test_saml_tile_launch_shows_exactly_the_released_attributes(demo):
    browser = _signed_in_browser(demo.portal)
    tiles = browser.get(f"{demo.portal}/", timeout=5).text
    assert SAML_NAME in tiles and OIDC_NAME in tiles

    handoff = browser.get(f"{demo.portal}/launch/{_app(SAML_NAME).slug}", timeout=5)
    assert handoff.status_code == 200, handoff.text[:300]
    form = read_post_form(handoff.text)
    assert form.action == f"{demo.app}/saml/acs"
    landed = browser.post(form.action, data=form.fields, timeout=5)  # what the page's script does

    assert landed.status_code == 200 and landed.url == f"{demo.app}/", landed.text[:500]
    assert '<strong id="protocol">SAML 2.0</strong>' in landed.text
    tables = Tables(landed.text).tables
    subject = tables["saml-attributes"]["subject"]
    # The default release: the pairwise subject, the given name, the family name's initial.
    assert tables["saml-attributes"] == {"subject": subject, "given_name": ["Ada"],
                                         "family_name_initial": ["L"]}
    assert tables["saml-subject"]["NameID"] == subject
    assert tables["saml-subject"]["NameID Format"] == ["urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"]

    # The same Response posted again is refused by the app.
    again = browser.post(form.action, data=form.fields, timeout=5)
    assert again.status_code == 403 and "used already" in again.text


def test_oidc_tile_launch_shows_exactly_the_released_claims(demo):
    browser = _signed_in_browser(demo.portal)
    launch = browser.get(f"{demo.portal}/launch/{_app(OIDC_NAME).slug}", timeout=10)

    hops = [urlsplit(r.headers["Location"]).path for r in launch.history]
    assert hops == ["/oidc/login", "/oidc/authorize", "/oidc/callback", "/"], hops
    assert launch.status_code == 200 and launch.url == f"{demo.app}/", launch.text[:500]
    assert '<strong id="protocol">OpenID Connect</strong>' in launch.text
    tables = Tables(launch.text).tables
    sub = tables["userinfo"]["sub"]
    # This app was released two fields more than the default: grade and school.
    assert tables["userinfo"] == {"sub": sub, "given_name": ["Ada"], "family_name_initial": ["L"],
                                  "grade": ["02"], "school": ["Maple Elementary"]}
    id_token = tables["id-token"]
    assert set(id_token) - PROTOCOL_CLAIMS == set(tables["userinfo"])
    assert {k: v for k, v in id_token.items() if k not in PROTOCOL_CLAIMS} == tables["userinfo"]
    assert id_token["iss"] == [demo.portal] and id_token["aud"] == [demo.credentials.client_id]


def test_the_app_refuses_an_answer_that_names_another_issuer(demo):
    # RFC 9207: the portal names itself in every authorization response, and the app checks it.
    browser = _signed_in_browser(demo.portal)
    url = f"{demo.portal}/launch/{_app(OIDC_NAME).slug}"
    while not urlsplit(url).path.endswith("/callback"):
        url = browser.get(url, timeout=5, allow_redirects=False).headers["Location"]
        url = url if "://" in url else demo.portal + url
    sent = dict(parse_qsl(urlsplit(url).query))
    assert sent["iss"] == demo.portal
    others = {"code": sent["code"], "state": sent["state"]}
    for answer in ({**others, "iss": "https://other-portal.test"}, others):
        refused = browser.get(url.split("?")[0] + "?" + urlencode(answer), timeout=5)
        assert refused.status_code == 403 and "another portal" in refused.text
    assert browser.get(url, timeout=5).status_code == 200   # as the portal sent it


def test_subjects_differ_between_the_two_apps(demo, settings):
    from portal import access
    from portal.db import db
    key = settings.pairwise_key
    saml = access.released_claims(db.session, demo.student, _app(SAML_NAME), pairwise_key=key)
    oidc = access.released_claims(db.session, demo.student, _app(OIDC_NAME), pairwise_key=key)
    assert saml["subject"] != oidc["subject"]


def test_student_of_another_school_gets_no_demo_tiles(demo):
    browser = _signed_in_browser(demo.portal, "grace.hopper")
    assert SAML_NAME not in browser.get(f"{demo.portal}/", timeout=5).text
    assert browser.get(f"{demo.portal}/launch/{_app(OIDC_NAME).slug}", timeout=5,
                       allow_redirects=False).status_code == 404


def test_registering_again_changes_nothing_and_a_lost_secret_is_replaced(demo, tmp_path):
    from portal.db import db
    from portal.models import App
    from portal.sso.oidc.clients import Client
    path = tmp_path / "demo_app.json"
    assert path.stat().st_mode & 0o777 == 0o600
    count = len(db.session.scalars(select(App)).all())

    again = register_demo_apps(db.session, demo.app, credentials_path=path, school="sch-maple")
    assert again == demo.credentials
    assert len(db.session.scalars(select(App)).all()) == count

    path.unlink()
    replaced = register_demo_apps(db.session, demo.app, credentials_path=path, school="sch-maple")
    assert replaced.client_id == demo.credentials.client_id
    assert replaced.client_secret != demo.credentials.client_secret
    client = Client(_app(OIDC_NAME))
    assert client.check_client_secret(replaced.client_secret)
    assert not client.check_client_secret(demo.credentials.client_secret)
    assert DemoCredentials.read(path) == replaced and path.stat().st_mode & 0o777 == 0o600


def test_signing_out_of_the_portal_signs_the_student_out_of_the_demo_app(demo):
    # The demo app registered a back-channel logout URI: the portal tells it, server to server.
    from portal.sso.oidc.backchannel import wait_for_deliveries
    browser = _signed_in_browser(demo.portal)
    launch = browser.get(f"{demo.portal}/launch/{_app(OIDC_NAME).slug}", timeout=10)
    assert launch.status_code == 200 and "<h2>Signed in</h2>" in launch.text
    assert Tables(launch.text).tables["id-token"]["sid"]
    tiles = browser.get(f"{demo.portal}/", timeout=5)
    out = browser.post(f"{demo.portal}/logout", data={"csrf_token": csrf_of(tiles.text)},
                       allow_redirects=False, timeout=5)
    assert out.status_code == 302
    assert wait_for_deliveries(10)
    page = browser.get(f"{demo.app}/", timeout=5)
    assert "<h2>Not signed in</h2>" in page.text


def test_the_demo_app_refuses_a_forged_logout_token(demo):
    from joserfc import jwt
    from joserfc.jwk import RSAKey
    forged = jwt.encode({"alg": "RS256", "typ": "logout+jwt"},
                        {"iss": demo.portal, "aud": demo.credentials.client_id, "sid": "x",
                         "events": {"http://schemas.openid.net/event/backchannel-logout": {}}},
                        RSAKey.generate_key(2048), algorithms=["RS256"])
    for token in (forged, "not a token", ""):
        answer = requests.post(f"{demo.app}/oidc/backchannel-logout", data={"logout_token": token},
                               timeout=5)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


def test_the_demo_app_hears_logouts_signed_with_a_key_rotated_since_it_fetched_them(demo, settings):
    from portal.sso.oidc.backchannel import wait_for_deliveries
    from portal.sso.oidc.keys import keys_dir, presentable_for, rotate_keys
    browser = _signed_in_browser(demo.portal)
    assert "<h2>Signed in</h2>" in browser.get(f"{demo.portal}/launch/{_app(OIDC_NAME).slug}", timeout=10).text
    rotate_keys(keys_dir(settings), at_once=True, keep_for=presentable_for(settings))   # portal keys rotate --now
    tiles = browser.get(f"{demo.portal}/", timeout=5)
    browser.post(f"{demo.portal}/logout", data={"csrf_token": csrf_of(tiles.text)}, timeout=5)
    assert wait_for_deliveries(10)
    assert "<h2>Not signed in</h2>" in browser.get(f"{demo.app}/", timeout=5).text


def test_the_demo_app_wants_iat_in_a_logout_token(demo, settings):
    import time

    from portal.sso.oidc.keys import keys_dir, load_keys
    ring = load_keys(keys_dir(settings))
    claims = {"iss": demo.portal, "aud": demo.credentials.client_id, "sid": "s", "sub": "x",
              "exp": int(time.time()) + 60, "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}
    answer = requests.post(f"{demo.app}/oidc/backchannel-logout", timeout=5,
                           data={"logout_token": ring.sign(claims, typ="logout+jwt")})
    assert answer.status_code == 400
    claims["iat"] = int(time.time())
    answer = requests.post(f"{demo.app}/oidc/backchannel-logout", timeout=5,
                           data={"logout_token": ring.sign(claims, typ="logout+jwt")})
    assert answer.status_code == 200


def test_signing_out_of_the_portal_signs_the_student_out_of_the_saml_demo_app(demo):
    # SAML Single Logout: the browser goes round by the demo app (python3-saml checks the
    # portal's signed LogoutRequest and answers), and ends on the portal's sign-in page.
    browser = _signed_in_browser(demo.portal)
    form = read_post_form(browser.get(f"{demo.portal}/launch/{_app(SAML_NAME).slug}", timeout=5).text)
    landed = browser.post(form.action, data=form.fields, timeout=5)
    assert "<h2>Signed in</h2>" in landed.text
    tiles = browser.get(f"{demo.portal}/", timeout=5)
    out = browser.post(f"{demo.portal}/logout", data={"csrf_token": csrf_of(tiles.text)}, timeout=10)
    assert out.status_code == 200 and out.url.startswith(f"{demo.portal}/login"), out.url
    visited = [r.url.split("?")[0] for r in out.history]
    assert f"{demo.app}/saml/slo" in visited and f"{demo.portal}/saml/slo" in visited
    assert "<h2>Not signed in</h2>" in browser.get(f"{demo.app}/", timeout=5).text
    assert browser.get(f"{demo.portal}/", timeout=5, allow_redirects=False).status_code == 302


def test_the_demo_apps_saml_metadata_is_xml_the_portal_registers(runner, tmp_path):
    """What a district would feed to `portal apps add-saml --metadata`, fetched from the app."""
    from xml.etree import ElementTree

    demo_app = create_demo_app(portal_url="http://127.0.0.1:9", base_url="http://demo.example",
                               client_id="demo", client_secret="demo")
    answer = demo_app.test_client().get("/saml/metadata")
    assert answer.status_code == 200
    assert answer.mimetype == "application/samlmetadata+xml"
    root = ElementTree.fromstring(answer.data)
    assert root.get("entityID") == "http://demo.example/saml/metadata"
    (tmp_path / "sp.xml").write_bytes(answer.data)
    result = runner.invoke(args=["apps", "add-saml", "Demo Reading Again", "--metadata",
                                 str(tmp_path / "sp.xml")])
    assert result.exit_code == 0, result.output
    assert "entity ID http://demo.example/saml/metadata" in result.output
    assert "ACS URLs: http://demo.example/saml/acs" in result.output
