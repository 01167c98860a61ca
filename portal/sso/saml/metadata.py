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
    key = etree.SubElement(desc, _q(c.MD, "KeyDescriptor"), use="signing")
    info = etree.SubElement(key, _q(c.DS, "KeyInfo"))
    data = etree.SubElement(info, _q(c.DS, "X509Data"))
    etree.SubElement(data, _q(c.DS, "X509Certificate")).text = idp.keys.cert_base64
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
    acs_urls: tuple[str, ...]
    cert_pem: str | None
    authn_requests_signed: bool


def pem_from_base64(b64: str) -> str:
    body = "".join(b64.split())
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


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

    services = []
    for acs in sp.findall(_q(c.MD, "AssertionConsumerService")):
        if acs.get("Binding") != c.BINDING_POST or not acs.get("Location"):
            continue
        try:
            index = int(acs.get("index", "0"))
        except ValueError:
            index = 0
        is_default = acs.get("isDefault") in ("true", "1")
        services.append((not is_default, index, acs.get("Location").strip()))
    if not services:
        raise BadMetadata("metadata has no AssertionConsumerService with the HTTP-POST binding")
    acs_urls = tuple(dict.fromkeys(url for _, _, url in sorted(services)))

    cert_pem = None
    for key in sp.findall(_q(c.MD, "KeyDescriptor")):
        if key.get("use") in (None, "", "signing"):
            cert = key.find(f"{_q(c.DS, 'KeyInfo')}/{_q(c.DS, 'X509Data')}/{_q(c.DS, 'X509Certificate')}")
            if cert is not None and text_of(cert):
                cert_pem = pem_from_base64(text_of(cert))
                break
    signed = sp.get("AuthnRequestsSigned") in ("true", "1")
    return SpMetadata(entity_id, acs_urls, cert_pem, signed)
