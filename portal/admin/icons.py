"""App icons live in the portal's database, never on a vendor's server.

A remote icon would tell the vendor every time a student opened their tiles (the page's
Content-Security-Policy blocks them for that reason), so an admin gives a file and the
portal keeps it as a data: URL.
"""
from __future__ import annotations

import base64
import hashlib
from pathlib import Path

MAX_BYTES = 64 * 1024
_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}


class IconError(ValueError):
    """The icon cannot be used; the message says why in one line."""


def _kind(data: bytes) -> str | None:
    for magic, kind in _MAGIC.items():
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:1024].lower()):
        return "image/svg+xml"
    return None


def icon_version(data_url: str) -> str:
    """A short fingerprint of an icon, so its URL changes when the icon does (and caches hold)."""
    return hashlib.blake2s(data_url.encode("ascii"), digest_size=6).hexdigest()


def icon_bytes(data_url: str) -> tuple[str, bytes]:
    """The media type and bytes of a stored icon."""
    head, _, payload = data_url.partition(",")
    return head[len("data:"):].split(";", 1)[0], base64.b64decode(payload)


def load_icon(value: str) -> str:
    """Turn an icon file's path into the data: URL the tiles page shows ("" for none)."""
    if not value:
        return ""
    if value.startswith(("http://", "https://")):
        raise IconError("icons are kept in the portal, not loaded from the app's server "
                        "(that would tell it whenever a student opens their tiles): "
                        "download the icon and give its file")
    path = Path(value)
    if not path.is_file():
        raise IconError(f"there is no icon file at {value!r}")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)    # enough to know it is too large, whatever its size
    except OSError as e:
        raise IconError(f"can't read the icon {value!r}: {e.strerror or e}") from None
    if len(data) > MAX_BYTES:
        raise IconError(f"the icon {path.name!r} is larger than {MAX_BYTES // 1024} KB")
    kind = _kind(data)
    if kind is None:
        raise IconError(f"the icon {path.name!r} is not a PNG, JPEG, GIF, WebP or SVG image")
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"
