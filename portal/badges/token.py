"""The badge token format: pure standard library, shared by the portal and the kiosk.

    spb1_<27 chars: 160 random bits, base64url><6 chars: CRC-32 of what precedes, base64url>

The fixed prefix and version, and the checksum, let anything else a camera reads be
rejected before any lookup. The token tells nothing about whose it is or where to use it.
"""
from __future__ import annotations

import base64
import hashlib
import re
import secrets
import zlib

PREFIX = "spb1_"
RANDOM_BYTES = 20
_BODY_LEN = 27   # base64url of 20 bytes, unpadded
_CHECK_LEN = 6   # base64url of 4 bytes, unpadded
TOKEN_LENGTH = len(PREFIX) + _BODY_LEN + _CHECK_LEN
_SHAPE = re.compile(rf"^{PREFIX}[A-Za-z0-9_-]{{{_BODY_LEN}}}[A-Za-z0-9_-]{{{_CHECK_LEN}}}$")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _checksum(text: str) -> str:
    return _b64(zlib.crc32(text.encode("ascii")).to_bytes(4, "big"))


def mint_token() -> str:
    """Return a new random badge token (CSPRNG, 160 bits)."""
    head = PREFIX + _b64(secrets.token_bytes(RANDOM_BYTES))
    return head + _checksum(head)


def looks_like_badge(text: str | bytes | None) -> bool:
    """True when `text` has the shape and checksum of a badge token (no lookup needed)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            return False
    if not text or len(text) != TOKEN_LENGTH or not _SHAPE.match(text):
        return False
    head, check = text[:-_CHECK_LEN], text[-_CHECK_LEN:]
    return secrets.compare_digest(_checksum(head), check)


def token_hash(token: str) -> str:
    """The only form in which the portal stores a token (SHA-256; the token is 160 random bits)."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()
