"""Metadata both ways: ours for apps to read, and an app's (SP) metadata for registration."""
from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from portal.sso.saml import constants as c
from portal.sso.saml.errors import SamlError
from portal.sso.saml.sp import IdentityProvider
from portal.sso.saml.xml import parse_xml, text_of


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def idp_metadata(idp: IdentityProvider) -> bytes:
    """Describe us: entity ID, signing certificate, SSO endpoints, NameID formats."""
    root = etree.Element(_q(c.MD, "EntityDescriptor"), nsmap={"md": c.MD, "ds": c.DS},
                         entityID=idp.entity_id)
    desc = etree.SubElement(root, _q(c.MD, "IDPSSODescriptor"),
                            WantAuthnRequestsSigned="false",
                            protocolSupportEnumeration=c.SAMLP)
    # The algorithms a request may be signed with (SAML V2.0 Metadata Extension for Algorithm
    # Support 1.0), so that an app that reads them does not sign with SHA-1. First in the
    # descriptor, as the schema puts Extensions.
    extensions = etree.SubElement(desc, _q(c.MD, "Extensions"), nsmap={"alg": c.ALG})
    for digest in c.REQUEST_DIGESTS:
        etree.SubElement(extensions, _q(c.ALG, "DigestMethod"), Algorithm=digest)
    for method in c.REDIRECT_SIG_ALGS:
        etree.SubElement(extensions, _q(c.ALG, "SigningMethod"), Algorithm=method)
    # The certificate in use, then the next one if the district set one: an app that reads this
    # trusts both, so the portal can change keys without a day on which every app must change.
    for cert in idp.keys.published_base64:
        key = etree.SubElement(desc, _q(c.MD, "KeyDescriptor"), use="signing")
        info = etree.SubElement(key, _q(c.DS, "KeyInfo"))
        data = etree.SubElement(info, _q(c.DS, "X509Data"))
        etree.SubElement(data, _q(c.DS, "X509Certificate")).text = cert
    if idp.slo_url:   # the schema puts SingleLogoutService before NameIDFormat
        # HTTP-Redirect only: a sign-out posted from the app's site arrives without the portal's
        # cookies (SameSite=Lax), so the portal could not see whom it is about (a POST is still
        # taken: slo.park_post brings it round by a same-site GET first).
        etree.SubElement(desc, _q(c.MD, "SingleLogoutService"), Binding=c.BINDING_REDIRECT,
                         Location=idp.slo_url)
    for fmt in (c.NAMEID_PERSISTENT, c.NAMEID_EMAIL, c.NAMEID_UNSPECIFIED):
        etree.SubElement(desc, _q(c.MD, "NameIDFormat")).text = fmt
    for binding in (c.BINDING_REDIRECT, c.BINDING_POST):
        etree.SubElement(desc, _q(c.MD, "SingleSignOnService"), Binding=binding, Location=idp.sso_url)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


class BadMetadata(SamlError):
    """An SP metadata file we can't use; the reason is one plain line."""


@dataclass(frozen=True)
class SpMetadata:
    entity_id: str
    acs_urls: tuple[str, ...]  # HTTP-POST ones, the default first
    acs_index: dict[int, str]  # the app's own index of each, as requests name them
    cert_pem: str | None
    authn_requests_signed: bool
    slo_url: str = ""            # the app's SingleLogoutService, if it has one we can use
    slo_response_url: str = ""
    slo_binding: str = c.BINDING_REDIRECT


def pem_from_base64(b64: str) -> str:
    body = "".join(b64.split())
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def _assertion_consumer_services(sp: etree._Element) -> tuple[tuple[str, ...], dict[int, str]]:
    """Return the HTTP-POST ACS URLs (the default first) and the app's {index: URL} for them.

    Requests name an ACS by the index the app gave it, so the index is kept as written. The
    default is the first with isDefault="true", else the first not marked "false", else the first
    (metadata spec 2.2.3).
    """
    seen: set[int] = set()
    posts: list[tuple[int, str, str | None]] = []
    for acs in sp.findall(_q(c.MD, "AssertionConsumerService")):
        try:
            index = int(acs.get("index", ""))
        except ValueError:
            raise BadMetadata("every AssertionConsumerService needs a numeric index") from None
        if not 0 <= index <= 65535 or index in seen:
            raise BadMetadata(f"AssertionConsumerService index {index} is out of range or repeated")
        seen.add(index)
        location = (acs.get("Location") or "").strip()
        if acs.get("Binding") == c.BINDING_POST and location:
            posts.append((index, location, acs.get("isDefault")))
    if not posts:
        raise BadMetadata("metadata has no AssertionConsumerService with the HTTP-POST binding")
    default = next((p for p in posts if p[2] in ("true", "1")), None) \
        or next((p for p in posts if p[2] not in ("false", "0")), posts[0])
    acs_urls = tuple(dict.fromkeys([default[1]] + [url for _, url, _ in posts]))
    return acs_urls, {index: url for index, url, _ in posts}


def _single_logout_service(sp: etree._Element) -> tuple[str, str, str]:
    """The app's SingleLogoutService: (Location, ResponseLocation, binding), HTTP-Redirect when
    the app offers it, else HTTP-POST (Spring Security's default publishes only that); ("", "",
    Redirect) when it has neither (SOAP, Artifact: we do not send by those)."""
    found: dict[str, tuple[str, str]] = {}
    for slo in sp.findall(_q(c.MD, "SingleLogoutService")):
        binding, location = slo.get("Binding"), (slo.get("Location") or "").strip()
        if binding in (c.BINDING_REDIRECT, c.BINDING_POST) and location and binding not in found:
            found[binding] = (location, (slo.get("ResponseLocation") or "").strip())
    for binding in (c.BINDING_REDIRECT, c.BINDING_POST):
        if binding in found:
            return found[binding] + (binding,)
    return "", "", c.BINDING_REDIRECT


def read_sp_metadata(data: bytes) -> SpMetadata:
    """Read an SP's metadata: entityID, HTTP-POST ACS locations, signing certificate, AuthnRequestsSigned."""
    try:
        root = parse_xml(data)
    except SamlError as e:
        raise BadMetadata(f"metadata is not usable XML: {e.reason}") from None
    if root.tag == _q(c.MD, "EntitiesDescriptor"):
        entities = root.findall(_q(c.MD, "EntityDescriptor"))
        if len(entities) != 1:
            raise BadMetadata(f"metadata describes {len(entities)} entities; give a file with exactly one")
        root = entities[0]
    if root.tag != _q(c.MD, "EntityDescriptor"):
        raise BadMetadata("metadata must be a SAML 2.0 EntityDescriptor")
    entity_id = (root.get("entityID") or "").strip()
    if not entity_id:
        raise BadMetadata("metadata has no entityID")
    sp = root.find(_q(c.MD, "SPSSODescriptor"))
    if sp is None:
        raise BadMetadata("metadata has no SPSSODescriptor: is this an app's (SP) metadata?")

    acs_urls, acs_index = _assertion_consumer_services(sp)

    cert_pem = None
    for key in sp.findall(_q(c.MD, "KeyDescriptor")):
        if key.get("use") in (None, "", "signing"):
            cert = key.find(f"{_q(c.DS, 'KeyInfo')}/{_q(c.DS, 'X509Data')}/{_q(c.DS, 'X509Certificate')}")
            if cert is not None and text_of(cert):
                cert_pem = pem_from_base64(text_of(cert))
                break
    signed = sp.get("AuthnRequestsSigned") in ("true", "1")
    slo_url, slo_response_url, slo_binding = _single_logout_service(sp)
    return SpMetadata(entity_id, acs_urls, acs_index, cert_pem, signed, slo_url, slo_response_url,
                      slo_binding)
