"""Broken and hostile request signatures are refusals (a plain 400), never a crash; ECDSA-signed
Redirect requests, signed the way xmlsec signs them, are accepted."""
from __future__ import annotations

import base64
import copy
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.x509.oid import NameOID
from lxml import etree

from portal.db import db
from portal.sso.saml import constants as c
from portal.sso.saml.errors import BadSignature
from portal.sso.saml.requests import decode_redirect
from tests.sso.conftest import PeerSP, register_and_grant, saml_response_of
from tests.sso.test_saml_http import assert_plain_refusal, post, request_xml, signed_in  # noqa: F401
from tests.sso.test_saml_requests import accept, authn_request, post_message, redirect_query, sign_xml, sp

NS = {"ds": c.DS}
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"


def _resign(root, keys) -> None:
    """Sign SignedInfo again with the app's own key: the shape is the app's, not a forger's."""
    info = root.find(".//ds:SignedInfo", NS)
    value = keys.key.sign(etree.tostring(info, method="c14n", exclusive=True, with_comments=False),
                          padding.PKCS1v15(), hashes.SHA256())
    root.find(".//ds:SignatureValue", NS).text = base64.b64encode(value).decode()


def _set_text(path, text):
    def change(root, keys):
        root.find(path, NS).text = text
    return change


def _remove(path):
    def change(root, keys):
        element = root.find(path, NS)
        element.getparent().remove(element)
    return change


def _comment_first(root, keys):
    value = root.find(".//ds:SignatureValue", NS)
    value.insert(0, etree.Comment("x"))
    value[0].tail, value.text = value.text, None


def _two_references(root, keys):
    info = root.find(".//ds:SignedInfo", NS)
    info.append(copy.deepcopy(info.find("ds:Reference", NS)))


def _transform(algorithm, resign=False):
    def change(root, keys):
        root.find(".//ds:Transform", NS).set("Algorithm", algorithm)
        if resign:
            _resign(root, keys)
    return change


def _reference_elsewhere(root, keys):
    root.find(".//ds:Reference", NS).set("URI", "#_someone-else")
    _resign(root, keys)


BROKEN = {
    "empty-signature-value": _set_text(".//ds:SignatureValue", ""),
    "comment-before-signature-value": _comment_first,
    "no-signed-info": _remove(".//ds:SignedInfo"),
    "no-signature-value": _remove(".//ds:SignatureValue"),
    "no-reference": _remove(".//ds:Reference"),
    "no-digest-value": _remove(".//ds:DigestValue"),
    "empty-digest-value": _set_text(".//ds:DigestValue", ""),
    "two-references": _two_references,
    "reference-to-another-id": _reference_elsewhere,
    "xslt-transform": _transform("http://www.w3.org/TR/1999/REC-xslt-19991116"),
    "base64-transform": _transform("http://www.w3.org/2000/09/xmldsig#base64", resign=True),
    "c14n-with-comments-transform": _transform(c.EXC_C14N + "WithComments", resign=True),
    "hmac-signature-method": lambda root, keys: root.find(".//ds:SignatureMethod", NS).set(
        "Algorithm", "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"),
}


def _broken(xml: str, keys, change) -> bytes:
    root = etree.fromstring(sign_xml(xml, keys))
    change(root, keys)
    return etree.tostring(root)


@pytest.mark.parametrize("change", BROKEN.values(), ids=BROKEN.keys())
def test_broken_post_signature_is_a_refusal(client, signed_in, saml_sp_keys, change):  # noqa: F811
    with pytest.raises(BadSignature):
        accept(post_message(_broken(authn_request(), saml_sp_keys, change)),
               sp(saml_sp_keys.cert_pem.decode()))
    assert_plain_refusal(post(client, _broken(request_xml(), saml_sp_keys, change)))


@pytest.mark.parametrize("key_value", [
    '<ds:KeyValue><ds:RSAKeyValue><ds:Modulus/><ds:Exponent/></ds:RSAKeyValue></ds:KeyValue>',
    '<dsig11:DEREncodedKeyValue xmlns:dsig11="http://www.w3.org/2009/xmldsig11#"/>',
    '<ds:X509Data><ds:X509Certificate>!!!</ds:X509Certificate></ds:X509Data>',
], ids=["empty-rsa-key-value", "empty-der-key-value", "garbage-certificate"])
def test_key_named_in_key_info_is_ignored_for_the_registered_certificate(
        client, signed_in, saml_sp_keys, key_value):  # noqa: F811
    root = etree.fromstring(sign_xml(request_xml(), saml_sp_keys))
    key_info = root.find(".//ds:KeyInfo", NS)
    key_info.clear()
    key_info.append(etree.fromstring(f'<wrap xmlns:ds="{c.DS}">{key_value}</wrap>')[0])
    saml_response_of(post(client, etree.tostring(root)))


@pytest.mark.parametrize("tail", [
    "&Signature=",
    "&Signature=" + quote(base64.b64encode(b"\0" * 7).decode()),
    "&Signature=%%%",
], ids=["empty", "too-short", "not-base64"])
def test_broken_redirect_signature_is_a_refusal(client, signed_in, tail):  # noqa: F811
    query = redirect_query(request_xml()) + "&SigAlg=" + quote(c.RSA_SHA256, safe="")
    assert_plain_refusal(client.get("/saml/sso?" + query + tail))


def test_signature_inside_a_redirect_request_is_a_refusal(client, signed_in, saml_sp_keys):  # noqa: F811
    xml = sign_xml(request_xml(), saml_sp_keys).decode()
    assert_plain_refusal(client.get("/saml/sso?" + redirect_query(xml)))


def test_out_of_range_issue_instant_is_a_plain_refusal(client, signed_in):  # noqa: F811
    for instant in ("9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"):
        xml = re.sub(r'IssueInstant="[^"]+"', f'IssueInstant="{instant}"', request_xml())
        assert_plain_refusal(client.get("/saml/sso?" + redirect_query(xml)))
        assert_plain_refusal(post(client, xml))


# --- ECDSA on the Redirect binding ----------------------------------------------------------------

@pytest.fixture(scope="module")
def ec_keys():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EC app")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def ecdsa_query(xml: str, key_pem: bytes, mangle=lambda signature: signature) -> str:
    """Sign the query string as xmlsec does (python3-saml's way): XML-DSig's r || s, not DER."""
    query = (redirect_query(xml, relay_state="https://sp.test/next")
             + "&SigAlg=" + quote(ECDSA_SHA256, safe=""))
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(key_pem, xmlsec.KeyFormat.PEM, None)
    signature = mangle(context.sign_binary(query.encode(), xmlsec.Transform.ECDSA_SHA256))
    return query + "&Signature=" + quote(base64.b64encode(signature).decode(), safe="")


def test_ecdsa_signed_redirect_request_is_accepted(client, auth, roster, ec_keys):
    key_pem, cert_pem = ec_keys
    school = roster.school()
    roster.person("ada.lovelace", schools=[school])
    register_and_grant(db.session, school=school, sp_cert=cert_pem, require_signed_requests=True)
    auth.login()
    form = saml_response_of(client.get("/saml/sso?" + ecdsa_query(request_xml(), key_pem)))
    assert form.fields["RelayState"] == "https://sp.test/next"
    peer = PeerSP(client.get("/saml/metadata").get_data(as_text=True))
    assert peer.consume(form.fields["SAMLResponse"], "_req-1").is_authenticated()

    flipped = lambda s: s[:-1] + bytes([s[-1] ^ 1])  # noqa: E731
    for mangle in (flipped, lambda s: s[:-1], lambda s: s + b"\0", lambda s: b""):
        query = ecdsa_query(request_xml(request_id="_x"), key_pem, mangle)
        assert_plain_refusal(client.get("/saml/sso?" + query))


def test_der_encoded_ecdsa_signature_is_refused(ec_keys):
    """A DER signature is not what XML-DSig sends; it must not verify by accident either."""
    key_pem, cert_pem = ec_keys
    key = serialization.load_pem_private_key(key_pem, None)
    query = redirect_query(authn_request()) + "&SigAlg=" + quote(ECDSA_SHA256, safe="")
    der = key.sign(query.encode(), ec.ECDSA(hashes.SHA256()))
    message = query + "&Signature=" + quote(base64.b64encode(der).decode(), safe="")
    with pytest.raises(BadSignature):
        accept(decode_redirect(message), sp(cert_pem.decode(), required=True))
    accept(decode_redirect(ecdsa_query(authn_request(), key_pem)), sp(cert_pem.decode(), required=True))
