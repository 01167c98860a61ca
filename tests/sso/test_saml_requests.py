"""Hostile and broken AuthnRequests are refused by the pure checks, each with a precise reason."""
from __future__ import annotations

import base64
import copy
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from portal.sso.saml import constants as c
from portal.sso.saml.errors import (
    BadDestination, BadSignature, MalformedMessage, ReplayedRequest, StaleRequest,
    UnknownServiceProvider,
)
from portal.sso.saml.keys import generate_keys
from portal.sso.saml.requests import (
    IncomingMessage, accept_authn_request, decode_post, decode_redirect,
)
from portal.sso.saml.sp import ServiceProvider
from portal.sso.saml.xml import deflate, saml_time

SSO = "https://portal.test/saml/sso"
SP_ID = "https://sp.test/saml/metadata"
ACS = "https://sp.test/saml/acs"
NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture(scope="module")
def sp_keys():
    return generate_keys("sp")


@pytest.fixture(scope="module")
def other_keys():
    return generate_keys("someone else")


def authn_request(request_id="_req-1", issuer=SP_ID, instant=NOW, acs=ACS, extra="", attrs="") -> str:
    acs_attr = f' AssertionConsumerServiceURL="{acs}"' if acs else ""
    return (
        f'<samlp:AuthnRequest xmlns:samlp="{c.SAMLP}" xmlns:saml="{c.SAML}" ID="{request_id}" '
        f'Version="2.0" IssueInstant="{saml_time(instant)}" Destination="{SSO}"{acs_attr} '
        f'ProtocolBinding="{c.BINDING_POST}"{attrs}>'
        f'<saml:Issuer>{issuer}</saml:Issuer>{extra}'
        f'<samlp:NameIDPolicy Format="{c.NAMEID_UNSPECIFIED}" AllowCreate="true"/>'
        f'</samlp:AuthnRequest>'
    )


def sign_xml(xml: str, keys) -> bytes:
    """Sign as an independent SP does (python3-saml on xmlsec)."""
    signed = OneLogin_Saml2_Utils.add_sign(xml, keys.key_pem.decode(), keys.cert_pem.decode(),
                                           sign_algorithm=OneLogin_Saml2_Constants.RSA_SHA256,
                                           digest_algorithm=OneLogin_Saml2_Constants.SHA256)
    return signed if isinstance(signed, bytes) else signed.encode()


def redirect_query(xml: str, keys=None, relay_state="https://sp.test/next",
                   sig_alg=c.RSA_SHA256, hash_alg=hashes.SHA256) -> str:
    query = "SAMLRequest=" + quote(base64.b64encode(deflate(xml.encode())).decode(), safe="")
    if relay_state:
        query += "&RelayState=" + quote(relay_state, safe="")
    if keys is not None:
        query += "&SigAlg=" + quote(sig_alg, safe="")
        signature = keys.key.sign(query.encode(), padding.PKCS1v15(), hash_alg())
        query += "&Signature=" + quote(base64.b64encode(signature).decode(), safe="")
    return query


def post_message(xml: bytes | str) -> IncomingMessage:
    data = xml if isinstance(xml, bytes) else xml.encode()
    return decode_post({"SAMLRequest": base64.b64encode(data).decode(), "RelayState": "rs"})


def sp(cert=None, required=False, acs=(ACS, "https://sp.test/saml/acs-2")) -> ServiceProvider:
    return ServiceProvider(entity_id=SP_ID, acs_urls=tuple(acs), cert_pem=cert,
                           require_signed_requests=required)


def accept(message, registered=None, seen=None, now=NOW):
    registered = registered if registered is not None else sp()
    seen = seen if seen is not None else set()

    def first_use(issuer, request_id):
        if (issuer, request_id) in seen:
            return False
        seen.add((issuer, request_id))
        return True

    return accept_authn_request(message, find_sp={registered.entity_id: registered}.get,
                                sso_urls=(SSO,), now=now, first_use=first_use)


# --- what is accepted ---------------------------------------------------------------------

def test_unsigned_redirect_request_accepted_when_signing_not_required():
    accepted = accept(decode_redirect(redirect_query(authn_request())))
    assert accepted.acs_url == ACS and accepted.request.id == "_req-1"
    assert accepted.relay_state == "https://sp.test/next" and not accepted.request.signed


def test_signed_redirect_request_verified_over_the_query_string(sp_keys):
    message = decode_redirect(redirect_query(authn_request(), sp_keys))
    accepted = accept(message, sp(sp_keys.cert_pem.decode(), required=True))
    assert accepted.request.signed


def test_signed_post_request_verified(sp_keys):
    accepted = accept(post_message(sign_xml(authn_request(), sp_keys)), sp(sp_keys.cert_pem.decode(), True))
    assert accepted.request.signed and accepted.acs_url == ACS


def test_default_acs_when_the_request_names_none():
    accepted = accept(decode_redirect(redirect_query(authn_request(acs=None))))
    assert accepted.acs_url == ACS
    index = authn_request(acs=None, attrs=' AssertionConsumerServiceIndex="1"')
    assert accept(decode_redirect(redirect_query(index))).acs_url == "https://sp.test/saml/acs-2"


# --- who and where ---------------------------------------------------------------------------

def test_unknown_issuer_refused():
    with pytest.raises(UnknownServiceProvider):
        accept(decode_redirect(redirect_query(authn_request(issuer="https://evil.test/sp"))))


def test_comment_in_issuer_cannot_shorten_it():
    # lxml's .text would read only "https://sp.test/saml/metadata" and match the registration.
    sneaky = authn_request(issuer=f"{SP_ID}<!---->.evil")
    with pytest.raises(UnknownServiceProvider):
        accept(decode_redirect(redirect_query(sneaky)))


def test_unknown_acs_url_refused():
    with pytest.raises(BadDestination):
        accept(decode_redirect(redirect_query(authn_request(acs="https://evil.test/acs"))))
    with pytest.raises(BadDestination):
        accept(decode_redirect(redirect_query(authn_request(acs=ACS + "/../evil"))))
    with pytest.raises(BadDestination):
        accept(decode_redirect(redirect_query(authn_request(acs=None, attrs=' AssertionConsumerServiceIndex="7"'))))


def test_wrong_destination_and_binding_refused():
    wrong = authn_request().replace(SSO, "https://other-idp.test/sso")
    with pytest.raises(BadDestination):
        accept(decode_redirect(redirect_query(wrong)))
    artifact = authn_request().replace(c.BINDING_POST, "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact")
    with pytest.raises(BadDestination):
        accept(decode_redirect(redirect_query(artifact)))


def test_request_naming_a_subject_refused():
    subject = (f'<saml:Subject><saml:NameID Format="{c.NAMEID_EMAIL}">admin@x<!---->.evil'
               f'</saml:NameID></saml:Subject>')
    with pytest.raises(MalformedMessage, match="Subject"):
        accept(decode_redirect(redirect_query(authn_request(extra=subject))))


# --- time and replay ----------------------------------------------------------------------------

def test_replayed_request_id_refused():
    seen = set()
    query = redirect_query(authn_request())
    accept(decode_redirect(query), seen=seen)
    with pytest.raises(ReplayedRequest):
        accept(decode_redirect(query), seen=seen)


def test_issue_instant_outside_sixty_seconds_refused():
    for instant in (NOW - timedelta(seconds=61), NOW + timedelta(seconds=61)):
        with pytest.raises(StaleRequest):
            accept(decode_redirect(redirect_query(authn_request(instant=instant))))
    for instant in (NOW - timedelta(seconds=59), NOW + timedelta(seconds=59)):
        accept(decode_redirect(redirect_query(authn_request(request_id=f"_ok{instant.second}", instant=instant))))


def test_rejected_request_does_not_use_up_its_id():
    seen = set()
    with pytest.raises(BadDestination):
        accept(decode_redirect(redirect_query(authn_request(acs="https://evil.test/acs"))), seen=seen)
    assert seen == set()


# --- signatures -----------------------------------------------------------------------------------

def test_unsigned_request_refused_when_app_requires_signing(sp_keys):
    registered = sp(sp_keys.cert_pem.decode(), required=True)
    with pytest.raises(BadSignature, match="not signed"):
        accept(decode_redirect(redirect_query(authn_request())), registered)
    with pytest.raises(BadSignature, match="not signed"):
        accept(post_message(authn_request()), registered)


def test_signature_by_another_key_refused(sp_keys, other_keys):
    registered = sp(sp_keys.cert_pem.decode())
    with pytest.raises(BadSignature):
        accept(decode_redirect(redirect_query(authn_request(), other_keys)), registered)
    with pytest.raises(BadSignature):
        accept(post_message(sign_xml(authn_request(), other_keys)), registered)


def test_redirect_signature_covers_relay_state_and_request(sp_keys):
    registered = sp(sp_keys.cert_pem.decode(), required=True)
    query = redirect_query(authn_request(), sp_keys)
    tampered = query.replace("RelayState=https%3A%2F%2Fsp.test%2Fnext", "RelayState=https%3A%2F%2Fevil.test")
    with pytest.raises(BadSignature):
        accept(decode_redirect(tampered), registered)
    other = redirect_query(authn_request(request_id="_other"), None, relay_state="")
    swapped = other.split("&")[0] + "&" + "&".join(query.split("&")[1:])
    with pytest.raises(BadSignature):
        accept(decode_redirect(swapped), registered)


RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"


def sha1_signed(xml: str, keys, binding: str) -> IncomingMessage:
    """Signed as pysaml2 signs by default (RSA-SHA1), or by HTTP-POST with RSA-SHA256 over a SHA-1
    digest as some SPs do."""
    if binding == "redirect":
        return decode_redirect(redirect_query(xml, keys, sig_alg=RSA_SHA1, hash_alg=hashes.SHA1))
    algorithms = {"post": (OneLogin_Saml2_Constants.RSA_SHA1, OneLogin_Saml2_Constants.SHA1),
                  "post-sha1-digest": (OneLogin_Saml2_Constants.RSA_SHA256, OneLogin_Saml2_Constants.SHA1)}
    sign_algorithm, digest_algorithm = algorithms[binding]
    signed = OneLogin_Saml2_Utils.add_sign(xml, keys.key_pem.decode(), keys.cert_pem.decode(),
                                           sign_algorithm=sign_algorithm, digest_algorithm=digest_algorithm)
    return post_message(signed)


SHA1_WAYS = ["redirect", "post", "post-sha1-digest"]


@pytest.mark.parametrize("binding", SHA1_WAYS)
def test_sha1_signatures_refused_where_the_app_must_sign(sp_keys, binding):
    registered = sp(sp_keys.cert_pem.decode(), required=True)
    with pytest.raises(BadSignature, match="SHA-1, which is too weak: it must sign with RSA-SHA256"):
        accept(sha1_signed(authn_request(), sp_keys, binding), registered)


@pytest.mark.parametrize("binding", SHA1_WAYS)
def test_sha1_signed_request_is_read_as_unsigned_where_the_app_need_not_sign(sp_keys, binding):
    accepted = accept(sha1_signed(authn_request(), sp_keys, binding), sp(sp_keys.cert_pem.decode()))
    assert accepted.acs_url == ACS and not accepted.request.signed


@pytest.mark.parametrize("binding", SHA1_WAYS)
def test_sha1_signature_that_does_not_verify_counts_for_nothing_either(sp_keys, other_keys, binding):
    """Trusted for nothing, a SHA-1 signature is not checked: one by another key, or over other
    fields, leaves the request just as unsigned (anyone may send this app unsigned requests)."""
    registered = sp(sp_keys.cert_pem.decode())
    assert not accept(sha1_signed(authn_request(), other_keys, binding), registered).request.signed
    if binding == "redirect":
        query = redirect_query(authn_request(request_id="_req-2"), sp_keys, sig_alg=RSA_SHA1,
                               hash_alg=hashes.SHA1)
        tampered = query.replace("RelayState=https%3A%2F%2Fsp.test%2Fnext", "RelayState=elsewhere")
        accepted = accept(decode_redirect(tampered), registered)
        assert not accepted.request.signed and accepted.relay_state == "elsewhere"


@pytest.mark.parametrize("binding", SHA1_WAYS)
def test_sha1_signed_request_gets_every_check_an_unsigned_one_gets(sp_keys, binding):
    registered = sp(sp_keys.cert_pem.decode())
    elsewhere = authn_request().replace(f'Destination="{SSO}"', 'Destination="https://idp.evil.test/sso"')
    with pytest.raises(BadDestination, match="different sign-in address"):
        accept(sha1_signed(elsewhere, sp_keys, binding), registered)
    with pytest.raises(BadDestination, match="not registered"):
        accept(sha1_signed(authn_request(acs="https://evil.test/acs"), sp_keys, binding), registered)
    with pytest.raises(StaleRequest):
        accept(sha1_signed(authn_request(instant=NOW - timedelta(hours=1)), sp_keys, binding), registered)
    with pytest.raises(UnknownServiceProvider):
        accept(sha1_signed(authn_request(issuer="https://other.test/sp"), sp_keys, binding), registered)
    seen: set = set()
    accept(sha1_signed(authn_request(), sp_keys, binding), registered, seen=seen)
    with pytest.raises(ReplayedRequest):
        accept(sha1_signed(authn_request(), sp_keys, binding), registered, seen=seen)
    # Without a Destination, as an unsigned request may be.
    nowhere = authn_request().replace(f' Destination="{SSO}"', "")
    assert not accept(sha1_signed(nowhere, sp_keys, binding), registered).request.signed


def test_duplicate_parameters_refused(sp_keys):
    query = redirect_query(authn_request(), sp_keys)
    with pytest.raises(MalformedMessage, match="twice"):
        decode_redirect(query + "&SAMLRequest=x")


def test_post_signature_wrapping_is_refused(sp_keys):
    """The signed request is hidden inside a forged one that names another ACS and ID."""
    registered = sp(sp_keys.cert_pem.decode(), acs=(ACS, "https://sp.test/saml/acs-2"))
    genuine = etree.fromstring(sign_xml(authn_request(), sp_keys))

    # 1. Forged outer request, the signed original moved into Extensions, signature on the outside.
    forged = etree.fromstring(authn_request(request_id="_forged", acs="https://sp.test/saml/acs-2").encode())
    signature = genuine.find(f"{{{c.DS}}}Signature")
    forged.insert(1, copy.deepcopy(signature))
    ext = etree.SubElement(forged, f"{{{c.SAMLP}}}Extensions")
    original = copy.deepcopy(genuine)
    original.remove(original.find(f"{{{c.DS}}}Signature"))
    ext.append(original)
    with pytest.raises(BadSignature):
        accept(post_message(etree.tostring(forged)), registered)

    # 2. Same ID on both, so a re-lookup by ID could find either.
    forged.set("ID", genuine.get("ID"))
    with pytest.raises(BadSignature):
        accept(post_message(etree.tostring(forged)), registered)

    # 3. The original with its signature moved into Extensions, fields altered.
    moved = copy.deepcopy(genuine)
    moved.set("AssertionConsumerServiceURL", "https://sp.test/saml/acs-2")
    sig = moved.find(f"{{{c.DS}}}Signature")
    moved.remove(sig)
    etree.SubElement(moved, f"{{{c.SAMLP}}}Extensions").append(sig)
    with pytest.raises(BadSignature):
        accept(post_message(etree.tostring(moved)), registered)

    # 4. Altering a signed field is caught by the digest.
    altered = copy.deepcopy(genuine)
    altered.set("AssertionConsumerServiceURL", "https://sp.test/saml/acs-2")
    with pytest.raises(BadSignature):
        accept(post_message(etree.tostring(altered)), registered)


# --- hostile XML and encodings ---------------------------------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    f'<samlp:AuthnRequest xmlns:samlp="{c.SAMLP}" xmlns:saml="{c.SAML}" ID="_x" Version="2.0" '
    f'IssueInstant="{saml_time(NOW)}"><saml:Issuer>&lol3;</saml:Issuer></samlp:AuthnRequest>'
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    f'<samlp:AuthnRequest xmlns:samlp="{c.SAMLP}" xmlns:saml="{c.SAML}" ID="_x" Version="2.0" '
    f'IssueInstant="{saml_time(NOW)}"><saml:Issuer>&xxe;</saml:Issuer></samlp:AuthnRequest>'
)


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"])
def test_documents_with_entities_refused(xml):
    with pytest.raises(MalformedMessage, match="document type"):
        accept(post_message(xml))
    with pytest.raises(MalformedMessage, match="document type"):
        accept(decode_redirect(redirect_query(xml)))
    utf16 = xml.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>').encode("utf-16")
    with pytest.raises(MalformedMessage):
        accept(post_message(utf16))


def test_garbage_refused():
    for bad in ("not base64 !!", base64.b64encode(b"<unclosed").decode(),
                base64.b64encode(b"<a>not saml</a>").decode()):
        with pytest.raises(MalformedMessage):
            accept(decode_post({"SAMLRequest": bad}))
    with pytest.raises(MalformedMessage):
        decode_redirect("SAMLRequest=" + quote(base64.b64encode(b"not deflated").decode()))
    with pytest.raises(MalformedMessage):
        decode_redirect("RelayState=x")


def test_deflate_bomb_refused():
    bomb = base64.b64encode(deflate(b"<" + b"a" * 10_000_000 + b">")).decode()
    with pytest.raises(MalformedMessage, match="too large"):
        decode_redirect("SAMLRequest=" + quote(bomb, safe=""))


def test_expired_app_certificate_no_longer_vouches(sp_keys):
    registered = sp(sp_keys.cert_pem.decode(), required=True)
    later = NOW.replace(year=NOW.year + 11)  # past the certificate's ten years
    query = redirect_query(authn_request(instant=later), sp_keys)
    with pytest.raises(BadSignature, match="expired"):
        accept(decode_redirect(query), registered, now=later)


# --- found by review ------------------------------------------------------------------------

def test_a_signed_request_must_name_its_destination(sp_keys):
    bare = authn_request().replace(f' Destination="{SSO}"', "")
    with pytest.raises(BadDestination):
        accept(decode_redirect(redirect_query(bare, sp_keys)), sp(sp_keys.cert_pem.decode()))
    with pytest.raises(BadDestination):
        accept(post_message(sign_xml(bare, sp_keys)), sp(sp_keys.cert_pem.decode()))
    assert not accept(decode_redirect(redirect_query(bare))).request.signed   # unsigned: optional


@pytest.mark.parametrize("index", ["+1", "1_0", "\u0661", "-1", "70000", "0x1", ""])
def test_acs_index_is_plain_digits(index):
    with pytest.raises(MalformedMessage):
        accept(decode_redirect(redirect_query(authn_request(
            acs=None, attrs=f' AssertionConsumerServiceIndex="{index}"'))))


def test_force_authn_and_is_passive_read_as_xml_booleans():
    for written, meant in ((" true", True), ("1 ", True), ("false", False), ("yes", False)):
        request = accept(decode_redirect(redirect_query(authn_request(
            request_id=f"_b{meant}{written.strip()}", attrs=f' ForceAuthn="{written}" IsPassive="{written}"')))).request
        assert (request.force_authn, request.is_passive) == (meant, meant), written
