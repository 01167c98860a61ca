"""Our Responses, built and signed by the pure functions, and what a peer SP makes of tampering."""
from __future__ import annotations

import base64
import copy
from datetime import datetime, timedelta, timezone

import pytest
from lxml import etree

from portal.sso.saml import constants as c
from portal.sso.saml.errors import ReleaseMisconfigured
from portal.sso.saml.keys import generate_keys
from portal.sso.saml.metadata import idp_metadata
from portal.sso.saml.responses import Authentication, issue_response
from portal.sso.saml.sp import IdentityProvider, ServiceProvider
from tests.sso.conftest import SP_ACS, SP_ENTITY_ID, PeerSP

CLAIMS = {"subject": "k2v3pairwise", "given_name": "Ada", "grade": ["02", "03"]}


@pytest.fixture(scope="module")
def idp():
    return IdentityProvider("https://portal.test/saml/metadata", "https://portal.test/saml/sso",
                            generate_keys())


@pytest.fixture(scope="module")
def sp():
    return ServiceProvider(SP_ENTITY_ID, (SP_ACS,))


@pytest.fixture(scope="module")
def peer(idp):
    return PeerSP(idp_metadata(idp).decode())


def issue(idp, sp, claims=CLAIMS, **kwargs):
    authn = Authentication("password", datetime.now(timezone.utc) - timedelta(minutes=5))
    return issue_response(idp, sp, acs_url=SP_ACS, claims=claims, authn=authn, **kwargs)


def b64(xml: bytes) -> str:
    return base64.b64encode(xml).decode()


def test_peer_accepts_a_fresh_response(idp, sp, peer):
    result = peer.consume(b64(issue(idp, sp, in_response_to="_r1")), "_r1")
    assert result.is_authenticated(), result.get_last_error_reason()
    assert result.get_nameid() == "k2v3pairwise"
    assert result.get_attributes() == {"subject": ["k2v3pairwise"], "given_name": ["Ada"], "grade": ["02", "03"]}


def test_response_and_assertion_are_both_signed_with_rsa_sha256_exclusive_c14n(idp, sp):
    root = etree.fromstring(issue(idp, sp))
    assertion = root.find(f"{{{c.SAML}}}Assertion")
    for element in (root, assertion):
        signature = element.find(f"{{{c.DS}}}Signature")
        assert signature is not None
        assert element.index(signature) == 1  # right after Issuer, as the schema wants
        info = signature.find(f"{{{c.DS}}}SignedInfo")
        assert info.find(f"{{{c.DS}}}SignatureMethod").get("Algorithm") == c.RSA_SHA256
        assert info.find(f"{{{c.DS}}}CanonicalizationMethod").get("Algorithm") == c.EXC_C14N
        assert info.find(f"{{{c.DS}}}Reference").get("URI") == "#" + element.get("ID")


def test_both_signatures_verify_with_signxml_too(idp, sp):
    """A second verifier beside xmlsec (the peer): the Response and the Assertion each verify
    with the IdP certificate, and each signature covers exactly its own element."""
    from signxml import XMLVerifier
    root = etree.fromstring(issue(idp, sp))
    assertion = root.find(f"{{{c.SAML}}}Assertion")
    response_sig = root.find(f"{{{c.DS}}}Signature")
    assertion_sig = assertion.find(f"{{{c.DS}}}Signature")
    cert = idp.keys.cert_pem.decode()
    for element, own in ((root, response_sig), (assertion, assertion_sig)):
        verified = XMLVerifier().verify(etree.tostring(element), x509_cert=cert, id_attribute="ID",
                                        expect_references=1)
        assert verified.signed_xml.get("ID") == element.get("ID")
        assert "".join(own.find(f".//{{{c.DS}}}X509Certificate").text.split()) == idp.keys.cert_base64


def test_expired_response_refused_by_peer(idp, sp, peer):
    old = issue(idp, sp, now=datetime.now(timezone.utc) - timedelta(minutes=10))
    result = peer.consume(b64(old))
    assert not result.is_authenticated()


def test_response_for_another_acs_refused(idp, peer):
    other = ServiceProvider(SP_ENTITY_ID, ("https://elsewhere.test/acs",))
    xml = issue_response(idp, other, acs_url="https://elsewhere.test/acs", claims=CLAIMS,
                         authn=Authentication("password", datetime.now(timezone.utc)))
    assert not peer.consume(b64(xml)).is_authenticated()


def test_response_for_another_audience_refused(idp, peer):
    other = ServiceProvider("https://another-app.test/sp", (SP_ACS,))
    assert not peer.consume(b64(issue(idp, other))).is_authenticated()


def test_only_a_registered_acs_can_be_addressed(idp, sp):
    with pytest.raises(ValueError):
        issue_response(idp, sp, acs_url="https://evil.test/acs", claims=CLAIMS,
                       authn=Authentication("password", datetime.now(timezone.utc)))


def test_nameid_comes_only_from_a_released_field(idp):
    by_email = ServiceProvider(SP_ENTITY_ID, (SP_ACS,), nameid="email")
    with pytest.raises(ReleaseMisconfigured):
        issue(idp, by_email)  # email not among the claims: not released
    root = etree.fromstring(issue(idp, by_email, claims={**CLAIMS, "email": "ada@school.test"}))
    name_id = root.find(f".//{{{c.SAML}}}NameID")
    assert name_id.text == "ada@school.test" and name_id.get("Format") == c.NAMEID_EMAIL


def test_comment_lookalike_in_a_value_stays_text_and_output_is_canonical(idp, sp, peer):
    claims = {"subject": "admin@x<!---->.evil", "given_name": "<!-- hi -->"}
    xml = issue(idp, sp, claims)
    assert b"<!--" not in xml  # escaped as &lt;!-- ..., never a comment node
    root = etree.fromstring(xml)
    assert not root.xpath("//comment() | //processing-instruction()")
    assertion = root.find(f"{{{c.SAML}}}Assertion")
    # What the SP reads is what was signed: exclusive c14n of our output is our output.
    for element in (root, assertion):
        c14n = etree.tostring(element, method="c14n", exclusive=True)
        assert etree.tostring(etree.fromstring(c14n), method="c14n", exclusive=True) == c14n
    result = peer.consume(b64(xml))
    assert result.is_authenticated(), result.get_last_error_reason()
    assert result.get_nameid() == "admin@x<!---->.evil"


def _tamper(xml: bytes, change) -> str:
    root = etree.fromstring(xml)
    change(root)
    return b64(etree.tostring(root))


def test_injected_comment_in_a_signed_nameid_is_not_believed(idp, sp, peer):
    def inject(root):
        name_id = root.find(f".//{{{c.SAML}}}NameID")
        name_id.text = "admin@x"
        comment = etree.Comment("")
        name_id.append(comment)
        comment.tail = ".evil"
    tampered = _tamper(issue(idp, sp, {"subject": "admin@x.evil"}), inject)
    result = peer.consume(tampered)
    # The signature still holds (c14n drops comments); what matters is the peer reads the whole value.
    assert result.get_nameid() in (None, "admin@x.evil")


def test_wrapping_attacks_on_our_response_fail_at_the_peer(idp, sp, peer):
    genuine = issue(idp, sp, {"subject": "real-student"})

    def forged_assertion_first(root):
        original = root.find(f"{{{c.SAML}}}Assertion")
        forged = copy.deepcopy(original)
        forged.remove(forged.find(f"{{{c.DS}}}Signature"))
        forged.set("ID", "_forged")
        forged.find(f".//{{{c.SAML}}}NameID").text = "someone-else"
        root.insert(root.index(original), forged)

    def forged_assertion_wrapping_signed_one(root):
        original = root.find(f"{{{c.SAML}}}Assertion")
        forged = copy.deepcopy(original)
        forged.remove(forged.find(f"{{{c.DS}}}Signature"))
        forged.find(f".//{{{c.SAML}}}NameID").text = "someone-else"
        root.replace(original, forged)
        forged.find(f"{{{c.SAML}}}Subject").append(original)  # signed one hidden inside

    def signature_moved_to_forged_assertion(root):
        original = root.find(f"{{{c.SAML}}}Assertion")
        original.find(f".//{{{c.SAML}}}NameID").text = "someone-else"

    def response_signature_only(root):
        original = root.find(f"{{{c.SAML}}}Assertion")
        signature = original.find(f"{{{c.DS}}}Signature")
        original.remove(signature)
        original.find(f".//{{{c.SAML}}}NameID").text = "someone-else"

    for attack in (forged_assertion_first, forged_assertion_wrapping_signed_one,
                   signature_moved_to_forged_assertion, response_signature_only):
        result = peer.consume(_tamper(genuine, attack))
        assert not result.is_authenticated(), attack.__name__
        assert result.get_nameid() is None
