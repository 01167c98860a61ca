"""The OpenID Provider's RS256 signing keys: one PEM file per key in a folder, newest signs.

The first key is generated on first use; `portal keys rotate` adds a newer one. Every kept key is
published in the JWKS so tokens signed with the previous key still verify while apps catch up.
"""
from __future__ import annotations

import fcntl
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from portal.config import private_folder

ALG = "RS256"
KEY_BITS = 2048
# Rotation keeps the new key and the one before it; older keys are deleted.
KEEP = 2

_cache: dict[Path, tuple[int, "KeyRing"]] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class KeyRing:
    """The kept keys, newest first."""

    keys: tuple[tuple[str, RSAKey], ...]  # (kid, key)

    @property
    def signing(self) -> tuple[str, RSAKey]:
        """The (kid, key) new tokens are signed with."""
        return self.keys[0]

    @property
    def kids(self) -> list[str]:
        return [kid for kid, _ in self.keys]

    def public_jwks(self) -> dict:
        """The JSON Web Key Set to publish: public halves only, each with its kid."""
        return {"keys": [dict(key.as_dict(private=False), kid=kid, use="sig", alg=ALG)
                         for kid, key in self.keys]}

    def public_key_set(self) -> KeySet:
        return KeySet.import_key_set(self.public_jwks())

    def sign(self, claims: dict) -> str:
        """Sign claims as a JWT with the newest key, naming it in the header's kid."""
        kid, key = self.signing
        return jwt.encode({"alg": ALG, "kid": kid, "typ": "JWT"}, claims, key, algorithms=[ALG])


def keys_dir(settings) -> Path:
    """Where the signing keys live: PORTAL_OIDC_KEYS_DIR, or instance/oidc_keys."""
    if settings.oidc_keys_dir:
        return Path(settings.oidc_keys_dir)
    return Path(settings.instance_path) / "oidc_keys"


def _key_files(folder: Path) -> list[Path]:
    # Names are UTC timestamps, so sorting by name sorts by age. Dot-files are half-written.
    return sorted((p for p in folder.glob("*.pem") if not p.name.startswith(".")), reverse=True)


def _write_new_key(folder: Path) -> Path:
    key = RSAKey.generate_key(KEY_BITS, private=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    tmp = folder / f".{stamp}-{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.as_pem(private=True))
    final = folder / f"{stamp}.pem"
    # rename is atomic: readers see a whole key or none.
    os.rename(tmp, final)
    return final


class _FolderLock:
    """An exclusive lock on the key folder, so two processes never both create the first key."""

    def __init__(self, folder: Path):
        self.path = folder / ".lock"

    def __enter__(self):
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _prepare(folder: Path) -> Path:
    return private_folder(folder)


def _read(folder: Path) -> KeyRing:
    keys = []
    for path in _key_files(folder)[:KEEP]:
        key = RSAKey.import_key(path.read_bytes())
        keys.append((key.thumbprint(), key))
    return KeyRing(tuple(keys))


def load_keys(folder: Path) -> KeyRing:
    """Return the key ring in `folder`, creating the first key (mode 0600) if there is none."""
    # Every token is signed with the ring: when the folder is unchanged since it was read (adding
    # or deleting a key changes its mtime), one stat is all it costs.
    cached = _cache.get(folder)
    if cached is not None:
        try:
            if os.stat(folder).st_mtime_ns == cached[0]:
                return cached[1]
        except FileNotFoundError:
            pass
    folder = _prepare(folder)
    stamp = folder.stat().st_mtime_ns
    with _cache_lock:
        cached = _cache.get(folder)
        if cached and cached[0] == stamp:
            return cached[1]
    if not _key_files(folder):
        with _FolderLock(folder):
            if not _key_files(folder):
                _write_new_key(folder)
        stamp = folder.stat().st_mtime_ns
    ring = _read(folder)
    with _cache_lock:
        _cache[folder] = (stamp, ring)
    return ring


def rotate_keys(folder: Path) -> tuple[KeyRing, list[str]]:
    """Add a new signing key beside the current one; return the ring and the kids retired."""
    folder = _prepare(folder)
    with _FolderLock(folder):
        before = _key_files(folder)
        retired_files = before[KEEP - 1:]
        retired = [RSAKey.import_key(p.read_bytes()).thumbprint() for p in retired_files]
        _write_new_key(folder)
        for path in retired_files:
            path.unlink()
    return load_keys(folder), retired
