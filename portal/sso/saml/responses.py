"""Build and sign SAML Responses: pure functions, no Flask.

Both the Response and its Assertion are signed (RSA-SHA256, exclusive c14n), each with an
enveloped signature placed right after its Issuer as the schema requires.

The signature is built here, not by signxml's XMLSigner: for each signature XMLSigner serializes
and re-parses the whole document three times, which cost as much CPU as the RSA operation itself
(a launch signs twice). Only the simple, fixed case is needed: one same-document reference, the
enveloped-signature and exclusive c14n transforms, SHA-256, RSA PKCS#1 v1.5. signxml still
verifies what SPs send us (requests.py); the tests check our output with xmlsec and signxml.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from portal.sso.saml import constants as c
from portal.sso.saml.authn_context import context_class
from portal.sso.saml.errors import UnsendableDetails
from portal.sso.saml.errors import ReleaseMisconfigured
from portal.sso.saml.sp import IdentityProvider, ServiceProvider
from portal.sso.saml.xml import new_id, saml_time


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


@dataclass(frozen=True)
class Attribute:
    name: str
    name_format: str
    values: tuple[str, ...]
    friendly_name: str = ""


@dataclass(frozen=True)
class Authentication:
    """How and when the student signed in (from the portal session)."""

    method: str
    instant: datetime
    # The class the app's RequestedAuthnContext was met with (authn_context.answered_class), when
    # not the method's own: "unspecified" for an app that asked for exactly that.
    claimed: str | None = None

    @property
    def context_class(self) -> str:
        return self.claimed or context_class(self.method)


def attributes_from_claims(claims: dict, sp: ServiceProvider) -> list[Attribute]:
    """Turn released claims (access.released_claims) into SAML attributes, one per claim."""
    out = []
    for field_name, value in claims.items():
        name = sp.attribute_name(field_name)
        values = tuple(str(v) for v in value) if isinstance(value, (list, tuple)) else (str(value),)
        name_format = c.ATTRNAME_URI if ":" in name else c.ATTRNAME_BASIC
        out.append(Attribute(name, name_format, values, friendly_name=field_name if name != field_name else ""))
    return out


def name_id_from_claims(claims: dict, sp: ServiceProvider) -> tuple[str, str]:
    """Return the NameID value and format: the app's chosen released field, never anything else."""
    value = claims.get(sp.nameid)
    if not isinstance(value, str) or not value:
        raise ReleaseMisconfigured(
            f"NameID source {sp.nameid!r} is not released to {sp.entity_id!r} or is empty")
    return value, sp.nameid_format


def _placeholder(parent) -> None:
    etree.SubElement(parent, _q(c.DS, "Signature"), Id="placeholder", nsmap={"ds": c.DS})


def _c14n(element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def _sign(element, idp: IdentityProvider) -> None:
    """Sign `element` in place with an enveloped signature where its placeholder is."""
    placeholder = element.find(_q(c.DS, "Signature"))
    position = element.index(placeholder)
    # The enveloped-signature transform: the digest covers the element without its signature.
    element.remove(placeholder)
    digest = base64.b64encode(hashlib.sha256(_c14n(element)).digest()).decode()

    signature = etree.Element(_q(c.DS, "Signature"), nsmap={"ds": c.DS})
    info = etree.SubElement(signature, _q(c.DS, "SignedInfo"))
    etree.SubElement(info, _q(c.DS, "CanonicalizationMethod"), Algorithm=c.EXC_C14N)
    etree.SubElement(info, _q(c.DS, "SignatureMethod"), Algorithm=c.RSA_SHA256)
    reference = etree.SubElement(info, _q(c.DS, "Reference"), URI="#" + element.get("ID"))
    transforms = etree.SubElement(reference, _q(c.DS, "Transforms"))
    etree.SubElement(transforms, _q(c.DS, "Transform"), Algorithm=c.ENVELOPED_SIGNATURE)
    etree.SubElement(transforms, _q(c.DS, "Transform"), Algorithm=c.EXC_C14N)
    etree.SubElement(reference, _q(c.DS, "DigestMethod"), Algorithm=c.DIGEST_SHA256)
    etree.SubElement(reference, _q(c.DS, "DigestValue")).text = digest
    # Exclusive c14n of SignedInfo does not depend on where it ends up: only ds is used in it.
    value = idp.keys.key.sign(_c14n(info), padding.PKCS1v15(), hashes.SHA256())
    etree.SubElement(signature, _q(c.DS, "SignatureValue")).text = base64.b64encode(value).decode()
    key_info = etree.SubElement(signature, _q(c.DS, "KeyInfo"))
    x509_data = etree.SubElement(key_info, _q(c.DS, "X509Data"))
    etree.SubElement(x509_data, _q(c.DS, "X509Certificate")).text = idp.keys.cert_base64
    element.insert(position, signature)


def build_assertion(idp: IdentityProvider, sp: ServiceProvider, *, acs_url: str, name_id: str,
                    name_id_format: str, attributes: list[Attribute], authn: Authentication,
                    now: datetime, in_response_to: str | None = None,
                    session_index: str | None = None) -> etree._Element:
    """Build the unsigned Assertion (with a signature placeholder after its Issuer)."""
    not_after = saml_time(now + timedelta(seconds=c.ASSERTION_LIFETIME_SECONDS))
    assertion = etree.Element(_q(c.SAML, "Assertion"), nsmap={"saml": c.SAML},
                              ID=new_id(), Version="2.0", IssueInstant=saml_time(now))
    etree.SubElement(assertion, _q(c.SAML, "Issuer")).text = idp.entity_id
    _placeholder(assertion)

    subject = etree.SubElement(assertion, _q(c.SAML, "Subject"))
    nid = etree.SubElement(subject, _q(c.SAML, "NameID"), Format=name_id_format)
    if name_id_format == c.NAMEID_PERSISTENT:
        nid.set("NameQualifier", idp.entity_id)
        nid.set("SPNameQualifier", sp.entity_id)
    _set_text(nid, name_id)
    confirmation = etree.SubElement(subject, _q(c.SAML, "SubjectConfirmation"), Method=c.CM_BEARER)
    data = etree.SubElement(confirmation, _q(c.SAML, "SubjectConfirmationData"),
                            NotOnOrAfter=not_after, Recipient=acs_url)
    if in_response_to:
        data.set("InResponseTo", in_response_to)

    conditions = etree.SubElement(
        assertion, _q(c.SAML, "Conditions"),
        NotBefore=saml_time(now - timedelta(seconds=c.CLOCK_SKEW_SECONDS)), NotOnOrAfter=not_after)
    restriction = etree.SubElement(conditions, _q(c.SAML, "AudienceRestriction"))
    etree.SubElement(restriction, _q(c.SAML, "Audience")).text = sp.entity_id

    statement = etree.SubElement(assertion, _q(c.SAML, "AuthnStatement"),
                                 AuthnInstant=saml_time(authn.instant),
                                 SessionIndex=session_index or new_id())
    context = etree.SubElement(statement, _q(c.SAML, "AuthnContext"))
    etree.SubElement(context, _q(c.SAML, "AuthnContextClassRef")).text = authn.context_class

    if attributes:
        attr_statement = etree.SubElement(assertion, _q(c.SAML, "AttributeStatement"))
        for attr in attributes:
            el = etree.SubElement(attr_statement, _q(c.SAML, "Attribute"),
                                  Name=attr.name, NameFormat=attr.name_format)
            if attr.friendly_name:
                el.set("FriendlyName", attr.friendly_name)
            for value in attr.values:
                _set_text(etree.SubElement(el, _q(c.SAML, "AttributeValue")), value)
    return assertion


def _set_text(element: etree._Element, value: str) -> None:
    try:
        element.text = value
    except ValueError:  # lxml: "All strings must be XML compatible"
        raise UnsendableDetails("a released value is not XML text") from None


def check_text(value: str) -> str:
    """`value` if XML can carry it, else UnsendableDetails."""
    _set_text(etree.Element("value"), value)
    return value


def build_response(idp: IdentityProvider, *, acs_url: str, now: datetime,
                   in_response_to: str | None = None, status: str = c.STATUS_SUCCESS,
                   sub_status: str | None = None) -> etree._Element:
    """Build the unsigned Response envelope (with a signature placeholder after its Issuer)."""
    response = etree.Element(_q(c.SAMLP, "Response"), nsmap={"samlp": c.SAMLP, "saml": c.SAML},
                             ID=new_id(), Version="2.0", IssueInstant=saml_time(now),
                             Destination=acs_url)
    if in_response_to:
        response.set("InResponseTo", in_response_to)
    etree.SubElement(response, _q(c.SAML, "Issuer")).text = idp.entity_id
    _placeholder(response)
    status_el = etree.SubElement(response, _q(c.SAMLP, "Status"))
    code = etree.SubElement(status_el, _q(c.SAMLP, "StatusCode"), Value=status)
    if sub_status:
        etree.SubElement(code, _q(c.SAMLP, "StatusCode"), Value=sub_status)
    return response


def sign_response(idp: IdentityProvider, response: etree._Element,
                  assertion: etree._Element | None) -> bytes:
    """Sign the Assertion, put it in the Response, sign the Response; return the XML bytes."""
    if assertion is not None:
        _sign(assertion, idp)
        response.append(assertion)
    _sign(response, idp)
    return etree.tostring(response, xml_declaration=True, encoding="UTF-8")


def issue_response(idp: IdentityProvider, sp: ServiceProvider, *, acs_url: str, claims: dict,
                   authn: Authentication, now: datetime | None = None,
                   in_response_to: str | None = None, session_index: str | None = None) -> bytes:
    """Issue a signed Response carrying exactly `claims` (from access.released_claims) to `acs_url`.

    `session_index` names the portal session to the app for Single Logout (default: a new one)."""
    if acs_url not in sp.acs_urls:
        raise ValueError("acs_url must be one of the app's registered ACS URLs")
    now = now or datetime.now(timezone.utc)
    name_id, name_id_format = name_id_from_claims(claims, sp)
    assertion = build_assertion(idp, sp, acs_url=acs_url, name_id=name_id,
                                name_id_format=name_id_format,
                                attributes=attributes_from_claims(claims, sp), authn=authn,
                                now=now, in_response_to=in_response_to,
                                session_index=session_index)
    response = build_response(idp, acs_url=acs_url, now=now, in_response_to=in_response_to)
    return sign_response(idp, response, assertion)


def issue_status_response(idp: IdentityProvider, *, acs_url: str, in_response_to: str,
                          sub_status: str, now: datetime | None = None) -> bytes:
    """Issue a signed Response with no assertion, saying why (e.g. NoPassive)."""
    now = now or datetime.now(timezone.utc)
    response = build_response(idp, acs_url=acs_url, now=now, in_response_to=in_response_to,
                              status=c.STATUS_RESPONDER, sub_status=sub_status)
    return sign_response(idp, response, None)
