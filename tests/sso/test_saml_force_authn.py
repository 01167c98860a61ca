"""ForceAuthn: an app that asks for a fresh sign-in gets one, by password or by badge, and the
answer waits for it (python3-saml builds the requests and reads the answers)."""
from __future__ import annotations

import base64
import re

from lxml import etree

from portal.db import db
from portal.sso.saml import constants as c
from portal.sso.saml.xml import parse_saml_time
from tests.badges.conftest import enroll_kiosk, issue, past_claim
from tests.sso.conftest import PeerSP, register_and_grant, saml_response_of


def _is_sign_in_again(page) -> str:
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html[:400]
    assert "Sign in again" in html and "SAMLResponse" not in html
    return html


def test_force_authn_asks_a_signed_in_student_for_the_password_again(client, auth, saml_world):
    auth.login()
    path, request_id = saml_world.peer.redirect_login(force_authn=True)
    assert client.get(path).status_code == 303
    html = _is_sign_in_again(client.get("/saml/resume"))
    assert 'type="password"' in html and 'value="/saml/resume"' in html
    # Coming back without signing in again still does not answer.
    _is_sign_in_again(client.get("/saml/resume"))

    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    signed_in = client.post("/login", data={"username": "ada.lovelace", "password": "correct horse battery",
                                            "csrf_token": token, "next": "/saml/resume"})
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/saml/resume"
    form = saml_response_of(client.get("/saml/resume"))
    answer = saml_world.peer.consume(form.fields["SAMLResponse"], request_id)
    assert answer.is_authenticated(), answer.get_errors()
    # The app asked for a sign-in just now: it is told when, to the second (a launch without
    # ForceAuthn is told the minute: test_saml_peer).
    with client.session_transaction() as session:
        signed_in = session["auth_time"]
    statement = etree.fromstring(base64.b64decode(form.fields["SAMLResponse"])).find(
        f".//{{{c.SAML}}}AuthnStatement")
    assert int(parse_saml_time(statement.get("AuthnInstant")).timestamp()) == signed_in


def test_force_authn_by_post_asks_for_a_fresh_sign_in_too(client, auth, saml_world):
    # The app's form posts from its own site: the browser sends no SameSite=Lax cookie with it,
    # so /saml/sso sees no session at all. The way back (/saml/resume, a top-level GET) carries
    # the student's session again, and must still ask for a fresh sign-in.
    auth.login()
    fields, request_id = saml_world.peer.post_login(force_authn=True, sign=True)
    cookie = client.get_cookie("portal_session").value
    client.delete_cookie("portal_session")
    posted = client.post("/saml/sso", data=fields)
    assert posted.status_code == 303 and posted.headers["Location"].endswith("/saml/resume")
    client.set_cookie("portal_session", cookie)
    html = _is_sign_in_again(client.get("/saml/resume"))

    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    client.post("/login", data={"username": "ada.lovelace", "password": "correct horse battery",
                                "csrf_token": token, "next": "/saml/resume"})
    form = saml_response_of(client.get("/saml/resume"))
    assert saml_world.peer.consume(form.fields["SAMLResponse"], request_id).is_authenticated()


def test_without_force_authn_the_signed_in_student_is_answered_at_once(client, auth, saml_world):
    auth.login()
    path, request_id = saml_world.peer.redirect_login()
    form = saml_response_of(client.get(path))
    assert saml_world.peer.consume(form.fields["SAMLResponse"], request_id).is_authenticated()


def test_force_authn_with_is_passive_answers_no_passive(client, auth, saml_world):
    auth.login()
    path, request_id = saml_world.peer.redirect_login(force_authn=True, is_passive=True)
    form = saml_response_of(client.get(path))
    answer = saml_world.peer.consume(form.fields["SAMLResponse"], request_id)
    assert not answer.is_authenticated()
    xml = etree.fromstring(base64.b64decode(form.fields["SAMLResponse"]))
    codes = [e.get("Value") for e in xml.iter(f"{{{c.SAMLP}}}StatusCode")]
    assert codes == [c.STATUS_RESPONDER, c.STATUS_NO_PASSIVE]


def test_force_authn_after_a_badge_asks_for_the_badge_and_the_scan_continues(
        app, roster, redis_client, saml_sp_keys):
    school = roster.school("sch-birch")
    section = roster.section(school, "sec-k1", grades="01")
    student = roster.person("ada", schools=[school], sections=[section], grades="01")
    register_and_grant(db.session, school=school, sp_cert=saml_sp_keys.cert_pem)
    kiosk = enroll_kiosk(app, redis_client, school)
    token = issue(redis_client, student)
    browser = kiosk.browser
    assert kiosk.sign_in(token).status_code == 302
    peer = PeerSP(browser.get("/saml/metadata").get_data(as_text=True), saml_sp_keys)

    path, request_id = peer.redirect_login(force_authn=True)
    assert browser.get(path).status_code == 303
    html = _is_sign_in_again(browser.get("/saml/resume"))
    assert "Hold your badge up to the camera again" in html and 'type="password"' not in html

    # The next scan at this kiosk goes on to the app instead of the tiles, once.
    handoff = kiosk.sign_in(token)
    assert handoff.status_code == 302 and past_claim(browser, handoff.headers["Location"]) == "/saml/resume"
    form = saml_response_of(browser.get("/saml/resume"))
    answer = peer.consume(form.fields["SAMLResponse"], request_id)
    assert answer.is_authenticated(), answer.get_errors()
    assert kiosk.sign_in(token).headers["Location"] == "/badges/home"
