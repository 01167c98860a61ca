"""Build and sign SAML Responses: pure functions, no Flask.

Both the Response and its Assertion are signed (RSA-SHA256, exclusive c14n), each with an
enveloped signature placed right after its Issuer as the schema requires.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from lxml import etree
from signxml import XMLSigner, methods

from portal.sso.saml import constants as c
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

    @property
    def context_class(self) -> str:
        return c.AUTHN_CONTEXTS.get(self.method, c.AC_UNSPECIFIED)


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


def _signer() -> XMLSigner:
    signer = XMLSigner(method=methods.enveloped, signature_algorithm=c.RSA_SHA256,
                       digest_algorithm="sha256", c14n_algorithm=c.EXC_C14N)
    signer.namespaces = {"ds": c.DS}
    return signer


def _sign(element, element_id: str, idp: IdentityProvider):
    return _signer().sign(element, key=idp.keys.key, cert=[idp.keys.cert],
                          reference_uri=f"#{element_id}", id_attribute="ID")


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
    nid.text = name_id
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
                etree.SubElement(el, _q(c.SAML, "AttributeValue")).text = value
    return assertion


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
        signed_assertion = _sign(assertion, assertion.get("ID"), idp)
        response.append(signed_assertion)
    signed = _sign(response, response.get("ID"), idp)
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def issue_response(idp: IdentityProvider, sp: ServiceProvider, *, acs_url: str, claims: dict,
                   authn: Authentication, now: datetime | None = None,
                   in_response_to: str | None = None) -> bytes:
    """Issue a signed Response carrying exactly `claims` (from access.released_claims) to `acs_url`."""
    if acs_url not in sp.acs_urls:
        raise ValueError("acs_url must be one of the app's registered ACS URLs")
    now = now or datetime.now(timezone.utc)
    name_id, name_id_format = name_id_from_claims(claims, sp)
    assertion = build_assertion(idp, sp, acs_url=acs_url, name_id=name_id,
                                name_id_format=name_id_format,
                                attributes=attributes_from_claims(claims, sp), authn=authn,
                                now=now, in_response_to=in_response_to)
    response = build_response(idp, acs_url=acs_url, now=now, in_response_to=in_response_to)
    return sign_response(idp, response, assertion)


def issue_status_response(idp: IdentityProvider, *, acs_url: str, in_response_to: str,
                          sub_status: str, now: datetime | None = None) -> bytes:
    """Issue a signed Response with no assertion, saying why (e.g. NoPassive)."""
    now = now or datetime.now(timezone.utc)
    response = build_response(idp, acs_url=acs_url, now=now, in_response_to=in_response_to,
                              status=c.STATUS_RESPONDER, sub_status=sub_status)
    return sign_response(idp, response, None)
