"""SAML Single Logout (profiles 4.4), front channel: build, read and check LogoutRequest and
LogoutResponse messages. Pure functions, no Flask (slo.py does the flows).

We send over HTTP-Redirect, signed in the address (bindings 3.4.4.1), to an app whose logout
address takes it, and over HTTP-POST with an enveloped signature (3.5.4) to an app whose address
takes only that (Spring Security's default). We read both bindings. A LogoutRequest from an app must be signed,
as the profile requires (4.4.4.1): an unsigned one could sign a student out from another site.

Logout messages, and only they, may be signed with SHA-1 (RSA-SHA1, or a SHA-1 digest), still the
default of some SP libraries; the signature must verify with the app's certificate as any other.
The worst a forged one could do is sign the student out (or mark an app's sign-out as done),
while refusing the app's genuine one leaves the student signed in to the portal on a shared
Chromebook after they signed out of the app. Nothing else takes a SHA-1 signature as proof:
sign-in requests from an app that must sign are refused, and others are read as unsigned.
"""
from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable
from urllib.parse import urlencode, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from portal.sso.saml import constants as c
from portal.sso.saml.errors import (
    BadDestination, BadSignature, MalformedMessage, ReplayedRequest, StaleRequest,
    UnknownServiceProvider,
)
from portal.sso.saml.requests import (
    IncomingMessage, _same_url, peek_issuer, signed_with_sha1, verify_post_signature,
    verify_redirect_signature,
)
from portal.sso.saml.sp import IdentityProvider, ServiceProvider
from portal.sso.saml.xml import deflate, new_id, parse_saml_time, parse_xml, saml_time, text_of

log = logging.getLogger(__name__)

LOGOUT_REQUEST_SECONDS = 120   # NotOnOrAfter of the requests we send


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


@dataclass(frozen=True)
class Participant:
    """A SAML app this portal session signed the student in to, which hears when it ends."""

    app_id: int
    name_id: str
    name_id_format: str
    session_index: str

    def as_json(self) -> list:
        return [self.app_id, self.name_id, self.name_id_format, self.session_index]

    @classmethod
    def from_json(cls, value) -> "Participant | None":
        try:
            app_id, name_id, name_id_format, session_index = value
        except (TypeError, ValueError):
            return None
        if not (isinstance(app_id, int) and all(isinstance(v, str) for v in
                                                (name_id, name_id_format, session_index))):
            return None
        return cls(app_id, name_id, name_id_format, session_index)


SESSION_KEY = "saml_slo"   # in a portal session: {app id: [NameID, format, SessionIndex]}


def participants_in(data) -> list[Participant]:
    """The SAML apps a portal session (its data) signed in to that hear of its end, in the order
    first launched."""
    known = data.get(SESSION_KEY) if hasattr(data, "get") else None
    if not isinstance(known, dict):
        return []
    found = []
    for app_id, entry in known.items():
        who = Participant.from_json([int(app_id)] + list(entry)) \
            if isinstance(app_id, str) and app_id.isdigit() and isinstance(entry, list) else None
        if who is not None:
            found.append(who)
    return found


@dataclass(frozen=True)
class LogoutRequest:
    """The fields of an app's LogoutRequest we act on, read from the signed element only."""

    id: str
    issuer: str
    name_id: str
    session_indexes: tuple[str, ...]
    destination: str | None
    name_id_format: str = ""


@dataclass(frozen=True)
class LogoutResponse:
    """An app's answer to our LogoutRequest."""

    issuer: str
    in_response_to: str
    status: str

    @property
    def succeeded(self) -> bool:
        return self.status == c.STATUS_SUCCESS


# --- what we send -------------------------------------------------------------------------------

def build_logout_request(idp: IdentityProvider, sp: ServiceProvider, who: Participant,
                         now: datetime) -> tuple[bytes, str]:
    """A LogoutRequest telling `sp` that the student's session ended; returns (XML, its ID)."""
    request_id = new_id()
    root = etree.Element(_q(c.SAMLP, "LogoutRequest"), nsmap={"samlp": c.SAMLP, "saml": c.SAML},
                         ID=request_id, Version="2.0", IssueInstant=saml_time(now),
                         Destination=sp.slo_url,
                         NotOnOrAfter=saml_time(now + timedelta(seconds=LOGOUT_REQUEST_SECONDS)))
    etree.SubElement(root, _q(c.SAML, "Issuer")).text = idp.entity_id
    name_id = etree.SubElement(root, _q(c.SAML, "NameID"), Format=who.name_id_format)
    if who.name_id_format == c.NAMEID_PERSISTENT:
        name_id.set("NameQualifier", idp.entity_id)
        name_id.set("SPNameQualifier", sp.entity_id)
    name_id.text = who.name_id
    etree.SubElement(root, _q(c.SAMLP, "SessionIndex")).text = who.session_index
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8"), request_id


def build_logout_response(idp: IdentityProvider, *, destination: str, in_response_to: str,
                          now: datetime, status: str = c.STATUS_SUCCESS,
                          sub_status: str | None = None) -> bytes:
    """Our answer to an app's LogoutRequest (sub_status PartialLogout: some other app of the
    session did not confirm its sign-out; SAML core 3.7.3.2)."""
    root = etree.Element(_q(c.SAMLP, "LogoutResponse"), nsmap={"samlp": c.SAMLP, "saml": c.SAML},
                         ID=new_id(), Version="2.0", IssueInstant=saml_time(now),
                         Destination=destination, InResponseTo=in_response_to)
    etree.SubElement(root, _q(c.SAML, "Issuer")).text = idp.entity_id
    status_el = etree.SubElement(root, _q(c.SAMLP, "Status"))
    code = etree.SubElement(status_el, _q(c.SAMLP, "StatusCode"), Value=status)
    if sub_status:
        etree.SubElement(code, _q(c.SAMLP, "StatusCode"), Value=sub_status)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def redirect_url(idp: IdentityProvider, location: str, param: str, xml: bytes,
                 relay_state: str = "") -> str:
    """The HTTP-Redirect binding: `location` with the DEFLATEd message, signed in the address.

    The signature covers SAMLRequest (or SAMLResponse), RelayState and SigAlg exactly as they
    stand in the query, each URL-encoded as urlencode does (what SP libraries rebuild to check)."""
    fields = [(param, base64.b64encode(deflate(xml)).decode())]
    if relay_state:
        fields.append(("RelayState", relay_state))
    fields.append(("SigAlg", c.RSA_SHA256))
    signed = urlencode(fields)
    signature = idp.keys.key.sign(signed.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    query = signed + "&" + urlencode([("Signature", base64.b64encode(signature).decode())])
    return location + ("&" if urlsplit(location).query else "?") + query


def signed_for_post(idp: IdentityProvider, xml: bytes) -> bytes:
    """`xml` (a message built above) with an enveloped signature after its Issuer, as the
    HTTP-POST binding carries it (bindings 3.5.4), made as our Responses' are."""
    from portal.sso.saml.responses import _placeholder, _sign
    root = etree.fromstring(xml)
    issuer = root.find(_q(c.SAML, "Issuer"))
    _placeholder(root)
    root.insert(root.index(issuer) + 1, root[-1])   # the schema puts it right after the Issuer
    _sign(root, idp)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# --- what we read -------------------------------------------------------------------------------

def _root(xml: bytes, expected: str) -> etree._Element:
    root = parse_xml(xml)
    if root.tag != _q(c.SAMLP, expected):
        local = etree.QName(root).localname if isinstance(root.tag, str) else "?"
        raise MalformedMessage(f"expected a {expected}, got {local}")
    if root.get("Version") != "2.0":
        raise MalformedMessage("only SAML 2.0 messages are accepted")
    return root


def _verified(message: IncomingMessage, root: etree._Element, sp: ServiceProvider,
              now: datetime, *, required: bool) -> etree._Element | None:
    """The element a valid signature covers; None if unsigned (and allowed to be)."""
    embedded = next(root.iter(_q(c.DS, "Signature")), None) is not None
    if message.signature is None and not embedded:
        if required:
            raise BadSignature("a logout request must be signed, and this one is not")
        return None
    if not sp.cert_pem:
        raise BadSignature("this app has no certificate to check its signature with")
    if message.binding == c.BINDING_REDIRECT:
        if embedded:
            raise BadSignature("the Redirect binding carries its signature in the address")
        verify_redirect_signature(message, sp.cert_pem, now, allow_sha1=True)
        return root
    return verify_post_signature(root, sp.cert_pem, allow_sha1=True)


def _check_instant(element: etree._Element, now: datetime) -> None:
    skew = timedelta(seconds=c.CLOCK_SKEW_SECONDS)
    issued = parse_saml_time(element.get("IssueInstant"))
    if not now - skew <= issued <= now + skew:
        raise StaleRequest("the message was issued too long ago, or in the future")
    if element.get("NotOnOrAfter") is not None:
        if parse_saml_time(element.get("NotOnOrAfter")) <= now - skew:
            raise StaleRequest("the logout request has expired")


def _check_destination(element: etree._Element, signed: bool, slo_urls: tuple[str, ...]) -> None:
    destination = element.get("Destination")
    if signed and not destination:
        raise BadDestination("a signed message must name its Destination")
    if destination and not any(_same_url(destination, u) for u in slo_urls):
        raise BadDestination("the message was meant for a different logout address")


def accept_logout_request(message: IncomingMessage, *,
                          find_sp: Callable[[str], ServiceProvider | None],
                          slo_urls: tuple[str, ...], now: datetime,
                          first_use: Callable[[str, str], bool]) -> tuple[LogoutRequest, ServiceProvider]:
    """Run every check on an app's LogoutRequest; return it with its app, or raise a SamlError."""
    root = _root(message.xml, "LogoutRequest")
    sp = find_sp(peek_issuer(root))
    if sp is None:
        raise UnknownServiceProvider("the logout request's Issuer is not a registered app")
    if not sp.slo_url:
        raise BadDestination("this app has no logout address registered to answer at")
    element = _verified(message, root, sp, now, required=True)
    if signed_with_sha1(message, root):
        log.info("SAML logout request from %s is signed with SHA-1: accepted for a sign-out only; "
                 "the app should sign with RSA-SHA256", sp.entity_id)
    if peek_issuer(element) != sp.entity_id:
        raise UnknownServiceProvider("the signed Issuer is not the registered app")
    request_id = element.get("ID") or ""
    if not request_id or len(request_id) > c.MAX_ID_LENGTH:
        raise MalformedMessage("the logout request has no usable ID")
    if element.find(_q(c.SAML, "EncryptedID")) is not None:
        raise MalformedMessage("encrypted NameIDs are not accepted")
    name_ids = element.findall(_q(c.SAML, "NameID"))
    if len(name_ids) != 1 or not text_of(name_ids[0]):
        raise MalformedMessage("the logout request must name one NameID")
    _check_destination(element, True, slo_urls)
    _check_instant(element, now)
    if not first_use(sp.entity_id, request_id):
        raise ReplayedRequest("this logout request was used before")
    indexes = tuple(text_of(e) for e in element.findall(_q(c.SAMLP, "SessionIndex")))
    return (LogoutRequest(request_id, sp.entity_id, text_of(name_ids[0]), indexes,
                          element.get("Destination"), name_ids[0].get("Format") or ""), sp)


def read_logout_response(message: IncomingMessage, *, sp: ServiceProvider,
                         slo_urls: tuple[str, ...], now: datetime) -> LogoutResponse:
    """Read an app's LogoutResponse to our request; verify its signature when it has one."""
    root = _root(message.xml, "LogoutResponse")
    if peek_issuer(root) != sp.entity_id:
        raise UnknownServiceProvider("the logout response is not from the app we asked")
    element = _verified(message, root, sp, now, required=False)
    signed = element is not None
    element = root if element is None else element
    _check_destination(element, signed, slo_urls)
    _check_instant(element, now)
    codes = element.findall(f"{_q(c.SAMLP, 'Status')}/{_q(c.SAMLP, 'StatusCode')}")
    if len(codes) != 1 or not codes[0].get("Value"):
        raise MalformedMessage("the logout response has no status")
    return LogoutResponse(sp.entity_id, element.get("InResponseTo") or "", codes[0].get("Value"))
