"""An app the student may not open (not granted, or the family opted out) still gets a SAML
Response to its sign-in request (SAML core 3.4.1.4): a signed RequestDenied that names no one,
which the page for the child posts back to the app when they press its button."""
from __future__ import annotations

import base64
import re
from datetime import datetime, timezone
from html import unescape

import pytest
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from portal.db import db
from portal.sso.saml import constants as c
from tests.badges.conftest import new_client
from tests.sso.conftest import SP_ACS, SP_TARGET, PeerSP, PostedForm, register_and_grant


@pytest.fixture
def client(app):
    return new_client(app)   # each request in its own app context, as under a real server


def denied_form(page) -> PostedForm:
    """The button's form on the page for the child: where it posts, and what."""
    html = page.get_data(as_text=True)
    assert page.status_code == 403, html[:400]
    assert "This app isn&#39;t one of your apps" in html or "This app isn't one of your apps" in html
    assert "<p>Ask your teacher if you should have it.</p>" in html and "Advice(" not in html
    form = re.search(r'<form method="post" action="([^"]+)" id="saml-denied">(.*?)</form>', html, re.S)
    assert form, "no button back to the app"
    assert "Go back to Reading Garden" in form.group(2)
    assert "<script" not in html       # the child presses the button: nothing submits by itself
    fields = {unescape(n): unescape(v) for n, v in
              re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(2))}
    return PostedForm(unescape(form.group(1)), fields)


def assert_denied_naming_no_one(form: PostedForm, peer: PeerSP, request_id: str, student) -> None:
    assert form.action == SP_ACS
    assert form.fields["RelayState"] == SP_TARGET
    xml = base64.b64decode(form.fields["SAMLResponse"])
    root = etree.fromstring(xml)
    assert root.tag == f"{{{c.SAMLP}}}Response" and root.get("InResponseTo") == request_id
    codes = [e.get("Value") for e in root.iter(f"{{{c.SAMLP}}}StatusCode")]
    assert codes == [c.STATUS_RESPONDER, c.STATUS_REQUEST_DENIED]
    # Signed by the portal (its certificate from the metadata the app read).
    assert OneLogin_Saml2_Utils.validate_sign(xml, peer.idp["x509cert"], raise_exceptions=True)
    # Nothing about the student: no assertion, no subject, no name.
    assert root.find(f"{{{c.SAML}}}Assertion") is None
    assert not list(root.iter(f"{{{c.SAML}}}NameID"))
    # Not inside the signature: its base64 values (and the certificate's) may hold any three
    # letters by chance ("Ada" once in a few hundred runs).
    unsigned = etree.fromstring(xml)
    for signature in list(unsigned.iter(f"{{{c.DS}}}Signature")):
        signature.getparent().remove(signature)
    values = [v for e in unsigned.iter() for v in [e.text or "", *e.attrib.values()]]
    for word in filter(None, (student.username, student.given_name, student.family_name,
                              student.email)):
        assert not any(word in value for value in values), word
    assert student.sourced_id not in values
    result = peer.consume(form.fields["SAMLResponse"], request_id)
    assert not result.is_authenticated()
    assert result.get_errors() == ["invalid_response"]
    assert "was not Success" in result.get_last_error_reason()


@pytest.fixture
def not_granted(app, client, roster, saml_sp_keys):
    """Ada, and an app granted only to another school."""
    school, other = roster.school(), roster.school()
    student = roster.person("ada.lovelace", schools=[school])
    register_and_grant(db.session, school=other, sp_cert=saml_sp_keys.cert_pem)
    return student, PeerSP(client.get("/saml/metadata").get_data(as_text=True), saml_sp_keys)


@pytest.mark.parametrize("binding", ["redirect", "post"])
def test_an_app_not_granted_gets_request_denied_by_the_childs_button(client, auth, not_granted,
                                                                     binding):
    student, peer = not_granted
    auth.login()
    if binding == "redirect":
        path, request_id = peer.redirect_login()
        page = client.get(path)
    else:
        fields, request_id = peer.post_login()
        page = client.post("/saml/sso", data=fields)
    assert_denied_naming_no_one(denied_form(page), peer, request_id, student)


def test_signing_in_first_then_not_granted_gets_the_button_too(client, auth, not_granted):
    student, peer = not_granted
    path, request_id = peer.redirect_login()
    parked = client.get(path)
    assert parked.status_code == 303
    auth.login()
    page = client.get("/saml/resume")
    assert_denied_naming_no_one(denied_form(page), peer, request_id, student)
    assert "portal_saml_pending=;" in page.headers.get("Set-Cookie", "")   # used once
    assert client.get("/saml/resume").status_code == 400


def test_an_app_the_family_opted_out_of_gets_request_denied(client, auth, saml_world):
    from portal.admin.optouts import opt_out
    opt_out(db.session, saml_world.student, saml_world.app, actor=None, now=datetime.now(timezone.utc))
    auth.login()
    path, request_id = saml_world.peer.redirect_login()
    assert_denied_naming_no_one(denied_form(client.get(path)), saml_world.peer, request_id,
                                saml_world.student)


def test_a_teacher_not_granted_the_app_is_told_whom_to_ask(client, auth, roster, saml_sp_keys):
    # The page said "Ask your teacher" to teachers too.
    from portal.models import Role
    school, other = roster.school(), roster.school()
    roster.person("tess.teacher", role=Role.teacher, schools=[school])
    register_and_grant(db.session, school=other, sp_cert=saml_sp_keys.cert_pem)
    peer = PeerSP(client.get("/saml/metadata").get_data(as_text=True), saml_sp_keys)
    auth.login("tess.teacher")
    page = client.get(peer.redirect_login()[0])
    html = page.get_data(as_text=True)
    assert page.status_code == 403 and "<p>Ask a district administrator if you should have it.</p>" in html
    assert "Ask your teacher" not in html
