"""Through HTTP: every refused request is a plain 400 page, and nobody launches what isn't theirs."""
from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone

import pytest
from lxml import etree
from sqlalchemy import func, select

from portal.db import db
from portal.models import Event
from portal.sso.saml import constants as c
from tests.auth.helpers import page_without_csrf
from tests.sso.conftest import SP_ACS, SP_ENTITY_ID, register_and_grant, saml_response_of
from tests.sso.test_saml_requests import (
    BILLION_LAUGHS, EXTERNAL_ENTITY, authn_request, redirect_query, sign_xml,
)

SSO = "http://localhost/saml/sso"


def request_xml(**kwargs) -> str:
    kwargs.setdefault("instant", datetime.now(timezone.utc))
    kwargs.setdefault("issuer", SP_ENTITY_ID)
    kwargs.setdefault("acs", SP_ACS)
    return authn_request(**kwargs).replace("https://portal.test/saml/sso", SSO)


def assert_plain_refusal(page, status=400):
    html = page.get_data(as_text=True)
    assert page.status_code == status, html[:400]
    assert "Traceback" not in html and "SAMLResponse" not in html
    assert 'role="alert"' in html
    return html


def assert_refused_with_request_denied(page):
    """The page for a student who may not open the app: its button takes the app a signed
    RequestDenied, with no assertion (test_saml_not_granted.py has the rest)."""
    html = page.get_data(as_text=True)
    assert page.status_code == 403, html[:400]
    assert "Traceback" not in html and 'role="alert"' in html
    response = re.search(r'name="SAMLResponse" value="([^"]+)"', html).group(1)
    root = etree.fromstring(base64.b64decode(response))
    assert [e.get("Value") for e in root.iter(f"{{{c.SAMLP}}}StatusCode")] == [
        c.STATUS_RESPONDER, c.STATUS_REQUEST_DENIED]
    assert root.find(f"{{{c.SAML}}}Assertion") is None


def post(client, xml: str | bytes):
    data = xml if isinstance(xml, bytes) else xml.encode()
    return client.post("/saml/sso", data={"SAMLRequest": base64.b64encode(data).decode()})


@pytest.fixture
def signed_in(auth, saml_world):
    auth.login()
    return saml_world


def test_accepted_request_for_reference(client, signed_in):
    saml_response_of(client.get("/saml/sso?" + redirect_query(request_xml())))


# Each request is built when its test runs, not when the tests are collected: a request dated
# "5 minutes from now" at collection is only seconds ahead by the time a long run reaches it.
@pytest.mark.parametrize("make_xml", [
    lambda: request_xml(issuer="https://unknown.test/sp"),
    lambda: request_xml(acs="https://evil.test/acs"),
    lambda: request_xml(instant=datetime.now(timezone.utc) - timedelta(minutes=5)),
    lambda: request_xml(instant=datetime.now(timezone.utc) + timedelta(minutes=5)),
    lambda: request_xml(extra='<saml:Subject><saml:NameID>admin@x<!---->.evil</saml:NameID></saml:Subject>'),
    lambda: BILLION_LAUGHS,
    lambda: EXTERNAL_ENTITY,
    lambda: "<not-xml",
], ids=["unknown-issuer", "unknown-acs", "too-old", "in-future", "subject", "billion-laughs",
        "external-entity", "not-xml"])
def test_hostile_requests_get_a_plain_400_on_both_bindings(client, signed_in, make_xml):
    assert_plain_refusal(client.get("/saml/sso?" + redirect_query(make_xml())))
    assert_plain_refusal(post(client, make_xml()))


def test_garbage_parameters_get_a_plain_400(client, signed_in):
    assert_plain_refusal(client.get("/saml/sso"))
    assert_plain_refusal(client.get("/saml/sso?SAMLRequest=%%%"))
    assert_plain_refusal(client.post("/saml/sso", data={"SAMLRequest": "\u00e9\u00e9"}))
    assert_plain_refusal(client.post("/saml/sso", data={}))


def test_replayed_request_refused(client, signed_in):
    url = "/saml/sso?" + redirect_query(request_xml(request_id="_once"))
    saml_response_of(client.get(url))
    assert "used before" not in assert_plain_refusal(client.get(url))


def test_unsigned_request_refused_when_the_app_requires_signing(client, signed_in, saml_sp_keys):
    from portal.db import db
    signed_in.app.settings = {**signed_in.app.settings, "require_signed_requests": True}
    db.session.commit()
    assert_plain_refusal(client.get("/saml/sso?" + redirect_query(request_xml())))
    assert_plain_refusal(post(client, request_xml(request_id="_p")))
    saml_response_of(post(client, sign_xml(request_xml(request_id="_signed"), saml_sp_keys)))


def test_expired_signed_request_refused(client, signed_in, saml_sp_keys):
    old = request_xml(instant=datetime.now(timezone.utc) - timedelta(minutes=3))
    assert_plain_refusal(post(client, sign_xml(old, saml_sp_keys)))
    assert_plain_refusal(client.get("/saml/sso?" + redirect_query(old, saml_sp_keys)))


@pytest.mark.parametrize("policy", [
    f'<samlp:NameIDPolicy Format="{c.NAMEID_EMAIL}" SPNameQualifier="admin@x&lt;!----&gt;.evil" AllowCreate="true"/>',
    f'<samlp:NameIDPolicy Format="{c.NAMEID_EMAIL}" AllowCreate="true"/>',
    f'<samlp:NameIDPolicy Format="{c.NAMEID_ENCRYPTED}"/>',
    '<samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient"/>',
    f'<samlp:NameIDPolicy Format="{c.NAMEID_PERSISTENT}" SPNameQualifier="https://other-sp.example/"/>',
])
def test_a_nameid_policy_the_app_is_not_given_is_answered_invalid_nameid_policy(client, signed_in, policy):
    # SAML core 3.4.1.1: a NameID of another Format than asked for is not an answer. Found by
    # review: an app asking for an email address got the opaque subject in its place. The app's
    # registration decides the NameID, never the request: the app hears InvalidNameIDPolicy.
    xml = request_xml().replace(f'<samlp:NameIDPolicy Format="{c.NAMEID_UNSPECIFIED}" AllowCreate="true"/>', policy)
    form = saml_response_of(client.get("/saml/sso?" + redirect_query(xml)))
    raw = base64.b64decode(form.fields["SAMLResponse"])
    root = etree.fromstring(raw)
    codes = [e.get("Value") for e in root.iter(f"{{{c.SAMLP}}}StatusCode")]
    assert codes == [c.STATUS_RESPONDER, c.STATUS_INVALID_NAMEID_POLICY]
    assert root.find(f"{{{c.SAML}}}Assertion") is None and b"evil" not in raw
    assert not signed_in.peer.consume(form.fields["SAMLResponse"]).is_authenticated()


@pytest.mark.parametrize("policy", [
    f'<samlp:NameIDPolicy Format="{c.NAMEID_UNSPECIFIED}" AllowCreate="true"/>',
    f'<samlp:NameIDPolicy Format="{c.NAMEID_PERSISTENT}" SPNameQualifier="{SP_ENTITY_ID}"/>',
    '<samlp:NameIDPolicy AllowCreate="true"/>',
    '',
])
def test_a_nameid_policy_the_app_is_given_gets_its_nameid(client, signed_in, policy):
    xml = request_xml().replace(f'<samlp:NameIDPolicy Format="{c.NAMEID_UNSPECIFIED}" AllowCreate="true"/>', policy)
    form = saml_response_of(client.get("/saml/sso?" + redirect_query(xml)))
    root = etree.fromstring(base64.b64decode(form.fields["SAMLResponse"]))
    name_id = root.find(f".//{{{c.SAML}}}NameID")
    assert name_id.get("Format") == c.NAMEID_PERSISTENT
    assert name_id.get("SPNameQualifier") == SP_ENTITY_ID
    result = signed_in.peer.consume(form.fields["SAMLResponse"])
    assert result.is_authenticated() and result.get_nameid() == result.get_attribute("subject")[0]


# --- access ---------------------------------------------------------------------------------------

def test_student_without_a_grant_cannot_launch(client, auth, app, roster):
    school, other_school = roster.school(), roster.school()
    roster.person("ada.lovelace", schools=[school])
    registered = register_and_grant(db.session, school=other_school)
    auth.login()
    unknown = client.get("/launch/no-such-app")
    launch = client.get(f"/launch/{registered.slug}")
    assert launch.status_code == unknown.status_code == 404
    assert page_without_csrf(launch) == page_without_csrf(unknown)
    sp_initiated = client.get("/saml/sso?" + redirect_query(request_xml()))
    assert_refused_with_request_denied(sp_initiated)
    assert db.session.scalar(select(func.count(Event.id)).where(Event.kind == "launch")) == 0


def test_signed_out_visitor_cannot_launch(client, saml_world):
    page = client.get(f"/launch/{saml_world.app.slug}")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")


def test_grant_checked_again_after_sign_in(client, auth, app, roster):
    school, other_school = roster.school(), roster.school()
    roster.person("ada.lovelace", schools=[school])
    register_and_grant(db.session, school=other_school)
    assert client.get("/saml/sso?" + redirect_query(request_xml())).status_code == 303
    auth.login()
    assert_refused_with_request_denied(client.get("/saml/resume"))


def test_hand_off_page_allows_only_its_own_script(client, signed_in):
    page = saml_response_of(client.get(f"/launch/{signed_in.app.slug}")) and client.get(
        f"/launch/{signed_in.app.slug}")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'sha256-" in policy and "unsafe-inline" not in policy
    assert page.headers["Cache-Control"] == "no-store"


def test_nameid_field_withdrawn_from_release_stops_launch_plainly(client, auth, roster):
    from portal.admin.services import AdminError, release_fields
    school = roster.school()
    roster.person("ada.lovelace", schools=[school])
    registered = register_and_grant(db.session, school=school, nameid="username")
    # Withdrawing it is refused now (portal.admin.services.release_fields) ...
    with pytest.raises(AdminError, match="must keep receiving that field"):
        release_fields(db.session, registered.slug, ["given_name"])
    # ... but a release stored without it (written before that check) still stops plainly.
    registered.released_fields = ["given_name"]
    db.session.commit()
    auth.login()
    html = assert_plain_refusal(client.get(f"/launch/{registered.slug}"), status=409)
    assert "set up right yet" in html
    assert db.session.scalar(select(func.count(Event.id)).where(Event.kind == "launch")) == 0


def test_unencoded_plus_in_the_request_is_tolerated(client, signed_in):
    query = redirect_query(request_xml(request_id="_plus"))
    saml_response_of(client.get("/saml/sso?" + query.replace("%2B", "+")))


# Found by review: each of these was a 500 (a traceback in the log) before it was a plain 400.
_RELATIVE_NAMESPACE_SIGNATURE = (
    f'<ds:Signature xmlns:ds="{c.DS}"><ds:SignedInfo xmlns:r="rel">'
    f'<ds:CanonicalizationMethod Algorithm="{c.EXC_C14N}"/><ds:SignatureMethod Algorithm="{c.RSA_SHA256}"/>'
    f'<ds:Reference URI="#_forged1"><ds:Transforms><ds:Transform Algorithm="{c.ENVELOPED_SIGNATURE}"/>'
    f'<ds:Transform Algorithm="{c.EXC_C14N}"/></ds:Transforms><ds:DigestMethod Algorithm="{c.DIGEST_SHA256}"/>'
    f'<ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo>'
    f'<ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature>')


def test_a_signature_that_cannot_be_canonicalised_is_refused_plainly(app, client, auth, roster, saml_sp_keys):
    app.config["PROPAGATE_EXCEPTIONS"] = False   # as in production: a crash would be the 500 page
    school = roster.school("sch-maple")
    roster.person("ada.lovelace", schools=[school])
    register_and_grant(db.session, school=school, sp_cert=saml_sp_keys.cert_pem)
    auth.login()
    assert_plain_refusal(post(client, request_xml(request_id="_forged1", extra=_RELATIVE_NAMESPACE_SIGNATURE)))


@pytest.mark.parametrize("destination", ["http://[", "http://[::1", "http://[not-an-ip]/saml/sso", "http://]x"])
def test_a_destination_that_is_no_address_is_refused_plainly(app, client, signed_in, destination):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    xml = request_xml(request_id="_d").replace(f'Destination="{SSO}"', f'Destination="{destination}"')
    assert destination in xml
    assert_plain_refusal(client.get("/saml/sso?" + redirect_query(xml)))
    assert_plain_refusal(post(client, xml.replace('ID="_d"', 'ID="_d2"')))


@pytest.mark.parametrize("destination, accepted", [
    ("http://localhost:80/saml/sso", True), ("HTTP://LOCALHOST/saml/sso", True),
    ("http://localhost:8080/saml/sso", False), ("https://localhost/saml/sso", False),
    ("http://someone@localhost/saml/sso", False), ("http://localhost:99999/saml/sso", False),
])
def test_a_destination_is_the_same_address_however_it_is_written(app, client, signed_in, destination, accepted):
    # RFC 3986 6.2.3: the default port written out is the same address. Found by review: refused.
    app.config["PROPAGATE_EXCEPTIONS"] = False
    xml = request_xml(request_id="_p").replace(f'Destination="{SSO}"', f'Destination="{destination}"')
    answer = client.get("/saml/sso?" + redirect_query(xml))
    if accepted:
        assert signed_in.peer.consume(saml_response_of(answer).fields["SAMLResponse"]).is_authenticated()
    else:
        assert_plain_refusal(answer)


def test_a_query_that_is_not_utf8_is_refused_plainly(app, client, signed_in):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    page = client.get("/saml/sso", environ_overrides={"QUERY_STRING": "SAMLRequest=x&RelayState=a\xffb"})
    assert page.status_code == 400 and "characters we can" in page.get_data(as_text=True)


def test_the_redirect_signature_covers_the_very_octets_received(client, auth, roster, saml_sp_keys):
    from urllib.parse import quote
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from tests.sso.test_saml_requests import deflate
    school = roster.school("sch-maple")
    roster.person("ada.lovelace", schools=[school])
    register_and_grant(db.session, school=school, sp_cert=saml_sp_keys.cert_pem,
                       require_signed_requests=True)
    auth.login()
    query = ("SAMLRequest=" + quote(base64.b64encode(deflate(request_xml(request_id="_qm").encode())).decode(),
                                    safe="")
             + "&RelayState=/lessons??today&SigAlg=" + quote(c.RSA_SHA256, safe=""))
    signature = saml_sp_keys.key.sign(query.encode(), padding.PKCS1v15(), hashes.SHA256())
    query += "&Signature=" + quote(base64.b64encode(signature).decode(), safe="")
    # Each "?" swapped for a byte the old check turned into "?" too (UTF-8 of "é"): not signed.
    swapped = query.encode().replace(b"/lessons??today", "/lessons\u00e9today".encode())
    assert_plain_refusal(client.get("/saml/sso", environ_overrides={"QUERY_STRING": swapped.decode("latin-1")}))
    saml_response_of(client.get("/saml/sso?" + query))
