"""Read, verify and check AuthnRequests (HTTP-Redirect and HTTP-POST bindings): pure functions.

Order matters: decode -> parse safely -> find the issuer's registration -> verify the signature
-> read every field from the element the signature covers -> check fields -> replay cache.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable
from urllib.parse import unquote, unquote_plus, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidInput, SignXMLException

from portal.sso.saml import constants as c
from portal.sso.saml.authn_context import RequestedContext, read_requested_context
from portal.sso.saml.errors import (
    BadDestination, BadSignature, MalformedMessage, ReplayedRequest, StaleRequest,
    UnknownServiceProvider,
)
from portal.sso.saml.sp import ServiceProvider
from portal.sso.saml.xml import b64decode, inflate, parse_saml_time, parse_xml, text_of

_HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
           "sha512": hashes.SHA512}
_SHA1_REDIRECT_SIG_ALGS = {
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": "sha1",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1": "sha1",
}

# What an app that signs with SHA-1 and must sign its requests is told (in the log; the page
# gives the student the usual advice).
SHA1_REFUSED = ("the app signs its requests with SHA-1, which is too weak: it must sign with "
                "RSA-SHA256")


@dataclass(frozen=True)
class IncomingMessage:
    """A SAMLRequest as it arrived, before any check."""

    binding: str
    xml: bytes
    relay_state: str = ""
    # Redirect binding only: the exact signed octets and the detached signature.
    signed_octets: bytes | None = None
    sig_alg: str | None = None
    signature: bytes | None = None


@dataclass(frozen=True)
class AuthnRequest:
    """The fields of an AuthnRequest we act on, read from the signed element only."""

    id: str
    issuer: str
    issue_instant: datetime
    destination: str | None = None
    acs_url: str | None = None
    acs_index: int | None = None
    protocol_binding: str | None = None
    is_passive: bool = False
    force_authn: bool = False
    signed: bool = False
    requested_context: RequestedContext | None = None
    # NameIDPolicy's Format and SPNameQualifier, when the request has them (SAML core 3.4.1.1)
    nameid_format: str | None = None
    sp_name_qualifier: str | None = None

    def nameid_policy_refused(self, sp: ServiceProvider) -> bool:
        """True when the request asks for a NameID this app is not given: another Format than
        the app's (unspecified leaves the choice to us; we encrypt none), or one qualified by
        another provider (an affiliation, which we have not). The app's registration decides
        the NameID, never the request: such a request hears InvalidNameIDPolicy."""
        wanted = (self.nameid_format or "").strip()
        if wanted not in ("", c.NAMEID_UNSPECIFIED, sp.nameid_format):
            return True
        qualifier = (self.sp_name_qualifier or "").strip()
        return qualifier not in ("", sp.entity_id)


@dataclass(frozen=True)
class AcceptedRequest:
    request: AuthnRequest
    sp: ServiceProvider
    acs_url: str
    relay_state: str


def _relay_state(value: str | None) -> str:
    value = value or ""
    if len(value) > c.MAX_RELAY_STATE:
        raise MalformedMessage("RelayState too long")
    return value


def decode_redirect(raw_query: str, param: str = "SAMLRequest") -> IncomingMessage:
    """Decode an HTTP-Redirect message (`param`: SAMLRequest or SAMLResponse) from its raw (still
    URL-encoded) query string."""
    raw: dict[str, str] = {}
    for part in raw_query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        key = unquote_plus(key)
        if key in (param, "RelayState", "SigAlg", "Signature"):
            if key in raw:
                raise MalformedMessage(f"{key} appears twice")
            raw[key] = value
    if param not in raw:
        raise MalformedMessage(f"no {param} in the address")
    # Base64 never holds a space, so a bare "+" some senders leave unencoded is still a "+".
    xml = inflate(b64decode(unquote(raw[param])))
    signed_octets = sig_alg = signature = None
    if "Signature" in raw or "SigAlg" in raw:
        if not ("Signature" in raw and "SigAlg" in raw):
            raise BadSignature("Signature and SigAlg must come together")
        # The signature covers the parameters exactly as the sender encoded them (bindings 3.4.4.1).
        octets = f"{param}=" + raw[param]
        if "RelayState" in raw:
            octets += "&RelayState=" + raw["RelayState"]
        octets += "&SigAlg=" + raw["SigAlg"]
        # The query was read as latin-1: encoding it back gives the very octets received (a
        # replacement character for each non-ASCII byte would let one stand for any other).
        signed_octets = octets.encode("latin-1")
        sig_alg = unquote_plus(raw["SigAlg"])
        signature = b64decode(unquote(raw["Signature"]))
    return IncomingMessage(c.BINDING_REDIRECT, xml, _relay_state(unquote_plus(raw.get("RelayState", ""))),
                           signed_octets, sig_alg, signature)


def decode_post(form: dict, param: str = "SAMLRequest") -> IncomingMessage:
    """Decode an HTTP-POST message (`param`: SAMLRequest or SAMLResponse) from its form fields."""
    value = form.get(param)
    if not value:
        raise MalformedMessage(f"no {param} in the form")
    return IncomingMessage(c.BINDING_POST, b64decode(value), _relay_state(form.get("RelayState")))


def _root(xml: bytes) -> etree._Element:
    root = parse_xml(xml)
    if root.tag != f"{{{c.SAMLP}}}AuthnRequest":
        local = etree.QName(root).localname if isinstance(root.tag, str) else "?"
        raise MalformedMessage(f"expected an AuthnRequest, got {local}")
    return root


def peek_issuer(root: etree._Element) -> str:
    """Return the Issuer the request claims: used only to find whose certificate to check it with."""
    issuers = root.findall(f"{{{c.SAML}}}Issuer")
    if len(issuers) != 1 or not text_of(issuers[0]):
        raise UnknownServiceProvider("the request has no Issuer, or more than one")
    return text_of(issuers[0])


def _load_cert(cert_pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(cert_pem.encode())


def _der_from_xmldsig_ecdsa(signature: bytes, key: ec.EllipticCurvePublicKey) -> bytes:
    """XML-DSig sends an ECDSA signature as r || s, each the curve's size; cryptography wants DER."""
    size = (key.curve.key_size + 7) // 8
    if len(signature) != 2 * size:
        raise BadSignature("the request's signature does not verify")
    r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    return encode_dss_signature(r, s)


def verify_redirect_signature(message: IncomingMessage, cert_pem: str, now: datetime | None = None,
                              *, allow_sha1: bool = False) -> None:
    """Check the Redirect binding's detached signature over SAMLRequest, RelayState and SigAlg.

    `allow_sha1`: for logout messages only (logout.py), whose worst effect is a sign-out."""
    if message.signature is None or message.signed_octets is None:
        raise BadSignature("the request is not signed")
    algorithms = c.REDIRECT_SIG_ALGS | (_SHA1_REDIRECT_SIG_ALGS if allow_sha1 else {})
    if message.sig_alg in c.SHA1_SIG_ALGS and message.sig_alg not in algorithms:
        raise BadSignature("the request is signed with SHA-1, which is no longer accepted")
    digest = algorithms.get(message.sig_alg or "")
    if digest is None:
        raise BadSignature(f"unsupported signature algorithm {message.sig_alg!r}")
    cert = _load_cert(cert_pem)
    # As signxml does for the POST binding: an expired certificate no longer vouches for anything.
    if not cert.not_valid_before_utc <= (now or datetime.now(timezone.utc)) <= cert.not_valid_after_utc:
        raise BadSignature("the app's certificate has expired or is not yet valid")
    key = cert.public_key()
    algorithm = _HASHES[digest]()
    try:
        if "#rsa-" in message.sig_alg:
            if not isinstance(key, rsa.RSAPublicKey):
                raise BadSignature("SigAlg does not match the app's certificate")
            key.verify(message.signature, message.signed_octets, padding.PKCS1v15(), algorithm)
        else:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise BadSignature("SigAlg does not match the app's certificate")
            key.verify(_der_from_xmldsig_ecdsa(message.signature, key), message.signed_octets,
                       ec.ECDSA(algorithm))
    except InvalidSignature:
        raise BadSignature("the request's signature does not verify") from None


_POST_SIGNATURE_CONFIG = SignatureConfiguration(
    location="./",  # a child of the AuthnRequest itself, nowhere else
    expect_references=1,
    signature_methods=frozenset(m for m in SignatureMethod
                                if m.value in c.REDIRECT_SIG_ALGS),
    digest_algorithms=frozenset(d for d in DigestAlgorithm if d.value in c.REQUEST_DIGESTS),
)
# Logout messages only (logout.py): SHA-1 as well, for apps that still sign with it.
_POST_SIGNATURE_CONFIG_SHA1 = SignatureConfiguration(
    location="./",
    expect_references=1,
    signature_methods=frozenset(m for m in SignatureMethod
                                if m.value in c.REDIRECT_SIG_ALGS.keys() | _SHA1_REDIRECT_SIG_ALGS.keys()),
    digest_algorithms=_POST_SIGNATURE_CONFIG.digest_algorithms | {DigestAlgorithm.SHA1},
)


def signed_with_sha1(message: IncomingMessage, root: etree._Element) -> bool:
    """True when the message's signature uses SHA-1, for the signature or for a digest: in the
    address (Redirect), or in any XML signature it holds (POST). Nothing is verified."""
    if message.sig_alg in c.SHA1_SIG_ALGS:
        return True
    ns = {"ds": c.DS}
    for signature in root.iter(f"{{{c.DS}}}Signature"):
        methods = {m.get("Algorithm") for m in signature.iterfind("ds:SignedInfo/ds:SignatureMethod", ns)}
        digests = {d.get("Algorithm") for d in
                   signature.iterfind("ds:SignedInfo/ds:Reference/ds:DigestMethod", ns)}
        if methods & c.SHA1_SIG_ALGS or digests & c.SHA1_DIGESTS:
            return True
    return False


# SAML's signature profile (core 5.4.4): verifiers may refuse any other transform. Exclusive c14n
# WithComments is refused too: no SP needs comments signed, and signxml fails on it as a transform.
_SAML_TRANSFORMS = frozenset({c.ENVELOPED_SIGNATURE, c.EXC_C14N})


def _has_text(element: etree._Element | None) -> bool:
    # .text, not text_of: signxml reads .text, which a leading comment leaves empty.
    return element is not None and bool((element.text or "").strip())


def check_signature_profile(signature: etree._Element, request_id: str | None) -> None:
    """Refuse a signature outside SAML's profile (core 5.4) before signxml reads it.

    signxml assumes a SignatureValue and DigestValue with text (it base64-decodes None otherwise);
    SAML also wants one reference, to the request's own ID, with only its two transforms.
    """
    ns = {"ds": c.DS}
    references = signature.findall("ds:SignedInfo/ds:Reference", ns)
    if len(signature.findall("ds:SignedInfo", ns)) != 1 or len(references) != 1:
        raise BadSignature("the signature must have one SignedInfo with one Reference")
    reference = references[0]
    if not (_has_text(signature.find("ds:SignatureValue", ns))
            and _has_text(reference.find("ds:DigestValue", ns))):
        raise BadSignature("the signature has no signature value or no digest value")
    if not request_id or reference.get("URI") != "#" + request_id:
        raise BadSignature("the signature does not refer to the request")
    transforms = {t.get("Algorithm") for t in reference.iterfind("ds:Transforms/ds:Transform", ns)}
    if not transforms <= _SAML_TRANSFORMS:
        raise BadSignature("the signature uses a transform SAML signatures may not use")


def verify_post_signature(root: etree._Element, cert_pem: str, *,
                          allow_sha1: bool = False) -> etree._Element:
    """Verify the enveloped signature; return ONLY the element it covers (the signed request).

    `allow_sha1`: for logout messages only (logout.py), whose worst effect is a sign-out."""
    signature = root.find(f"{{{c.DS}}}Signature")
    if signature is None:
        raise BadSignature("the request's signature is missing or not where SAML puts it")
    check_signature_profile(signature, root.get("ID"))
    # The app's registered certificate is the only key that counts, so the key the signature
    # names in KeyInfo is dropped (from a copy): signxml would compare it with the certificate
    # and fails on an empty one. KeyInfo lies outside what is signed, so nothing signed changes.
    root = copy.deepcopy(root)
    for key_info in root.iterfind(f"{{{c.DS}}}Signature/{{{c.DS}}}KeyInfo"):
        key_info.getparent().remove(key_info)
    try:
        result = XMLVerifier().verify(root, x509_cert=cert_pem, id_attribute="ID",
                                      expect_config=_POST_SIGNATURE_CONFIG_SHA1 if allow_sha1
                                      else _POST_SIGNATURE_CONFIG)
    except (SignXMLException, InvalidInput, ValueError) as e:
        raise BadSignature(f"the request's signature does not verify: {e}") from None
    except etree.DocumentInvalid as e:  # signxml's XML-DSig schema check: a part is missing
        raise BadSignature(f"the request's signature is not a valid XML signature: {e}") from None
    except etree.LxmlError:  # e.g. C14NError: canonicalising failed (a relative namespace URI)
        raise BadSignature("the request's signature could not be checked: its XML cannot be "
                           "canonicalised") from None
    signed = result.signed_xml
    # The reference must be the whole request: a signature over some other element with the
    # same ID (a wrapped copy) proves nothing about the request we were sent.
    if (signed is None or signed.tag != root.tag or signed.get("ID") != root.get("ID")
            or signed.getparent() is not None):
        raise BadSignature("the signature does not cover the request")
    return signed


def read_authn_request(element: etree._Element, *, signed: bool) -> AuthnRequest:
    """Read the fields we act on from a (verified, if signed) AuthnRequest element."""
    if element.get("Version") != "2.0":
        raise MalformedMessage("only SAML 2.0 requests are accepted")
    request_id = element.get("ID") or ""
    if not request_id or len(request_id) > c.MAX_ID_LENGTH:
        raise MalformedMessage("the request has no usable ID")
    if element.find(f"{{{c.SAML}}}Subject") is not None:
        # We never let an app choose whom a response is about; the signed-in student decides.
        raise MalformedMessage("requests naming a Subject are not accepted")
    index = element.get("AssertionConsumerServiceIndex")
    if index is not None:
        # xs:unsignedShort: ASCII digits (int() would also take "+1", "1_0" and other scripts).
        index = index.strip()
        if not (index.isascii() and index.isdigit() and int(index) <= 65535):
            raise MalformedMessage("AssertionConsumerServiceIndex is not a number")
        index_value = int(index)
    else:
        index_value = None
    policy = element.find(f"{{{c.SAMLP}}}NameIDPolicy")
    return AuthnRequest(
        id=request_id,
        issuer=peek_issuer(element),
        issue_instant=parse_saml_time(element.get("IssueInstant")),
        destination=element.get("Destination"),
        acs_url=element.get("AssertionConsumerServiceURL"),
        acs_index=index_value,
        protocol_binding=element.get("ProtocolBinding"),
        is_passive=_xs_boolean(element.get("IsPassive")),
        force_authn=_xs_boolean(element.get("ForceAuthn")),
        signed=signed,
        requested_context=read_requested_context(element),
        nameid_format=policy.get("Format") if policy is not None else None,
        sp_name_qualifier=policy.get("SPNameQualifier") if policy is not None else None,
    )


def _xs_boolean(value: str | None) -> bool:
    """An xs:boolean attribute (whitespace collapses): true or 1."""
    return (value or "").strip() in ("true", "1")


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _same_url(a: str, b: str) -> bool:
    """The same address (RFC 3986 6.2.3): scheme and host in any case, the default port written
    or not, an empty path as "/"."""
    try:
        pa, pb = urlsplit(a), urlsplit(b)
        ports = [p.port or _DEFAULT_PORTS.get(p.scheme.lower()) for p in (pa, pb)]
    except ValueError:   # "http://[", an unclosed IPv6 bracket, a port that is no number
        return False
    return (pa.scheme.lower(), pa.hostname, ports[0], pa.username, pa.path or "/", pa.query) == \
        (pb.scheme.lower(), pb.hostname, ports[1], pb.username, pb.path or "/", pb.query)


def choose_acs(request: AuthnRequest, sp: ServiceProvider) -> str:
    """Choose the ACS URL to answer: exactly one the app registered, or its default."""
    if request.protocol_binding and request.protocol_binding != c.BINDING_POST:
        raise BadDestination(f"responses are sent only by HTTP-POST, not {request.protocol_binding}")
    if request.acs_url is not None and request.acs_index is not None:
        raise BadDestination("the request names both an ACS URL and an ACS index")
    if request.acs_url is not None:
        if request.acs_url not in sp.acs_urls:
            raise BadDestination(f"ACS URL {request.acs_url[:200]!r} is not registered for this app")
        return request.acs_url
    if request.acs_index is not None:
        acs_url = sp.acs_for_index(request.acs_index)
        if acs_url is None:
            raise BadDestination(f"ACS index {request.acs_index} is not registered for this app")
        return acs_url
    return sp.default_acs


def check_timing(request: AuthnRequest, now: datetime) -> None:
    """Refuse a request whose IssueInstant is outside the allowed clock skew, either way."""
    skew = timedelta(seconds=c.CLOCK_SKEW_SECONDS)
    if request.issue_instant < now - skew:
        raise StaleRequest("the request was issued too long ago")
    if request.issue_instant > now + skew:
        raise StaleRequest("the request was issued in the future")


def accept_authn_request(message: IncomingMessage, *, find_sp: Callable[[str], ServiceProvider | None],
                         sso_urls: tuple[str, ...], now: datetime,
                         first_use: Callable[[str, str], bool]) -> AcceptedRequest:
    """Run every check on an incoming AuthnRequest; return what to answer, or raise a SamlError.

    `find_sp(entity_id)` looks up a registration; `first_use(issuer, id)` records the request ID
    and returns False if it was seen before (the replay cache).
    """
    root = _root(message.xml)
    sp = find_sp(peek_issuer(root))
    if sp is None:
        raise UnknownServiceProvider("the request's Issuer is not a registered app")

    element, signed = root, False
    # Any signature anywhere counts: one moved out of place must fail, not pass as "unsigned".
    embedded = next(root.iter(f"{{{c.DS}}}Signature"), None) is not None
    has_signature = message.signature is not None or embedded
    if sp.require_signed_requests and not has_signature:
        raise BadSignature("this app must sign its requests, and this one is not signed")
    if has_signature and signed_with_sha1(message, root):
        if sp.require_signed_requests:
            raise BadSignature(SHA1_REFUSED)
        # Anyone who can send an unsigned request to this app could send this one: a SHA-1
        # signature is not checked (verifying or not, it is trusted for nothing) and the request
        # is read, and checked, as an unsigned one is.
        has_signature = False
    if sp.cert_pem and has_signature:
        if message.binding == c.BINDING_REDIRECT:
            if embedded:
                raise BadSignature("the Redirect binding carries its signature in the address")
            verify_redirect_signature(message, sp.cert_pem, now)
        else:
            element = verify_post_signature(root, sp.cert_pem)
        signed = True
    elif has_signature and sp.require_signed_requests:
        raise BadSignature("this app has no certificate to check its signature with")

    request = read_authn_request(element, signed=signed)
    if request.issuer != sp.entity_id:
        raise UnknownServiceProvider("the signed Issuer is not the registered app")
    if signed and not request.destination:
        # SAML bindings 3.4.5.2 and 3.5.5.2: a signed message says where it is meant for, so that
        # a request signed for another identity provider cannot be replayed here.
        raise BadDestination("a signed request must name its Destination")
    if request.destination and not any(_same_url(request.destination, u) for u in sso_urls):
        raise BadDestination("the request was meant for a different sign-in address")
    acs_url = choose_acs(request, sp)
    check_timing(request, now)
    if not first_use(sp.entity_id, request.id):
        raise ReplayedRequest("this request was used before")
    return AcceptedRequest(request, sp, acs_url, message.relay_state)
