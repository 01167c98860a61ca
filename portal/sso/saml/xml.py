"""Reading and writing SAML XML safely: no DTDs, no entities, no network, bounded sizes."""
from __future__ import annotations

import base64
import binascii
import secrets
import zlib
from datetime import datetime, timezone

from lxml import etree

from portal.sso.saml.constants import MAX_MESSAGE_BYTES
from portal.sso.saml.errors import MalformedMessage


def _parser() -> etree.XMLParser:
    # A fresh parser per document: lxml parsers are not thread-safe.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False,
                           collect_ids=False)


def parse_xml(data: bytes) -> etree._Element:
    """Parse one SAML document, refusing DTDs (and so every entity trick) outright."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise MalformedMessage("message too large")
    # SAML forbids DTDs (bindings spec 3.1): refusing them closes billion laughs and XXE at once.
    # The cheap byte check catches them before libxml2 sees them; the docinfo check below
    # catches anything encoded so the byte check misses it (UTF-16, say).
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise MalformedMessage("document type declarations are not allowed")
    try:
        root = etree.fromstring(data, parser=_parser())
    except (etree.XMLSyntaxError, ValueError) as e:
        raise MalformedMessage(f"not well-formed XML: {e}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None or tree.docinfo.externalDTD is not None:
        raise MalformedMessage("document type declarations are not allowed")
    for node in root.iter():
        if isinstance(node, etree._Entity):
            raise MalformedMessage("entity references are not allowed")
    return root


def b64decode(value: str | bytes) -> bytes:
    """Decode strict base64 (whitespace allowed, as SAML senders wrap lines)."""
    if isinstance(value, str):
        try:
            value = value.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedMessage("message is not base64") from None
    value = b"".join(value.split())
    if len(value) > MAX_MESSAGE_BYTES * 4 // 3 + 4:
        raise MalformedMessage("message too large")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedMessage("message is not base64") from None


def inflate(data: bytes) -> bytes:
    """Undo the Redirect binding's raw DEFLATE, refusing to expand past our size limit."""
    d = zlib.decompressobj(-15)
    try:
        out = d.decompress(data, MAX_MESSAGE_BYTES + 1)
    except zlib.error:
        raise MalformedMessage("message is not DEFLATE-compressed") from None
    if len(out) > MAX_MESSAGE_BYTES or d.unconsumed_tail:
        raise MalformedMessage("message too large")
    return out


def deflate(data: bytes) -> bytes:
    """Compress with raw DEFLATE, as the Redirect binding sends messages."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def new_id() -> str:
    """Make a fresh SAML ID: an NCName (starts with an underscore) with 160 random bits."""
    return "_" + secrets.token_hex(20)


def saml_time(moment: datetime) -> str:
    """Format an xs:dateTime in UTC with a Z, as SAML requires."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_saml_time(value: str | None) -> datetime:
    """Read an xs:dateTime that SAML says must be UTC; refuse anything else."""
    if not value:
        raise MalformedMessage("IssueInstant is missing")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedMessage(f"IssueInstant is not a date and time: {value[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:  # 9999-12-31T23:59:59-01:00 is past the last moment Python can hold
        raise MalformedMessage(f"IssueInstant is out of range: {value[:40]!r}") from None


def text_of(element) -> str:
    """Return the text of an element, with comments and processing instructions left out.

    A comment splits lxml's .text ("admin@x<!---->.evil" reads as "admin@x"); joining every
    text node and ignoring comments reads what exclusive c14n (without comments) signed.
    """
    if element is None:
        return ""
    return "".join(element.xpath("text()")).strip()
