"""The OpenID Provider's RS256 signing keys: one PEM file per key in a folder.

Each file is named for the UTC time from which its key signs. The first key is generated on first
use and signs at once. `portal keys rotate` adds a key that is published in the JWKS at once but
signs only PUBLISH_AHEAD later, so an app that cached the key set (for its max-age, 300 s) already
holds the new key when the first token signed with it arrives; `--now` makes it sign at once (a
leaked key). Every kept key is published: keys waiting to sign, the one signing, the one before
it, and any older one whose tokens an app may still present (presentable_for), so they still
verify.

A file there that is not a key stops the command line (`keys list`, `keys rotate`) with its name.
The portal itself skips it and logs its name once, so apps keep signing in with the good keys;
with no good key left, the endpoints that sign answer "unavailable" (KeyFileError).
"""
from __future__ import annotations

import fcntl
import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from portal.config import private_folder
from portal.files import write_whole

log = logging.getLogger(__name__)

ALG = "RS256"
KEY_BITS = 2048
# How long apps may cache the JWKS and discovery (Cache-Control max-age).
JWKS_MAX_AGE = 300
# A rotated key is published this long before it signs: twice the JWKS's max-age.
PUBLISH_AHEAD = 2 * JWKS_MAX_AGE
_STAMP = "%Y%m%dT%H%M%S%fZ"

_cache: dict[Path, tuple[int, "KeyRing | str"]] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class SigningKey:
    kid: str
    key: RSAKey = field(repr=False)
    signs_from: datetime
    path: Path


@dataclass(frozen=True)
class KeyRing:
    """The kept keys, the one that signs last first."""

    keys: tuple[SigningKey, ...]

    def signing_key(self, now: datetime | None = None) -> SigningKey:
        """The key new tokens are signed with: the latest whose time has come (the oldest kept if
        none has, which only a clock set back can cause)."""
        now = now or datetime.now(timezone.utc)
        return next((k for k in self.keys if k.signs_from <= now), self.keys[-1])

    @property
    def kids(self) -> list[str]:
        return [k.kid for k in self.keys]

    def waiting(self, now: datetime | None = None) -> list[SigningKey]:
        """Keys published but not signing yet, the one that will sign last first."""
        now = now or datetime.now(timezone.utc)
        return [k for k in self.keys if k.signs_from > now]

    def public_jwks(self) -> dict:
        """The JSON Web Key Set to publish: public halves only, each with its kid."""
        return {"keys": [dict(k.key.as_dict(private=False), kid=k.kid, use="sig", alg=ALG)
                         for k in self.keys]}

    def public_key_set(self) -> KeySet:
        return KeySet.import_key_set(self.public_jwks())

    def sign(self, claims: dict, *, typ: str = "JWT") -> str:
        """Sign claims as a JWT with the newest key, naming it in the header's kid."""
        signing = self.signing_key()
        kid, key = signing.kid, signing.key
        return jwt.encode({"alg": ALG, "kid": kid, "typ": typ}, claims, key, algorithms=[ALG])


def keys_dir(settings) -> Path:
    """Where the signing keys live: PORTAL_OIDC_KEYS_DIR, or instance/oidc_keys."""
    if settings.oidc_keys_dir:
        return Path(settings.oidc_keys_dir)
    return Path(settings.instance_path) / "oidc_keys"


def _signs_from(path: Path) -> datetime:
    """When the key signs from: its name; for a key file named otherwise (one an administrator
    put there), since it was last changed."""
    try:
        return datetime.strptime(path.stem, _STAMP).replace(tzinfo=timezone.utc)
    except ValueError:
        return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)


def _key_files(folder: Path) -> list[Path]:
    """The key files, the one that signs last first. Dot-files are half-written."""
    files = (p for p in folder.glob("*.pem") if not p.name.startswith("."))
    return sorted(files, key=lambda p: (_signs_from(p), p.name), reverse=True)


def _write_new_key(folder: Path, signs_from: datetime) -> Path:
    key = RSAKey.generate_key(KEY_BITS, private=True)
    final = folder / f"{signs_from.strftime(_STAMP)}.pem"
    # Through a dot-file renamed into place: readers see a whole key or none, even on a full disk.
    write_whole(final, key.as_pem(private=True), 0o600)
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


class KeyFileError(Exception):
    """A file in the key folder is not an RSA private key; the message names it. Not a
    ValueError: the endpoints' handlers of bad input must not take it for one."""


@lru_cache(maxsize=16)
def _key_of(pem: bytes) -> RSAKey:
    """The key of a PEM file's bytes. Importing one checks the RSA key's numbers, some 70 ms of
    CPU: the key folder is read again when keys rotate, and an app built again in the same
    process (every test builds one) reuses the keys of the same bytes. The keys are not changed
    by their users; a file that can't be read raises each time (lru_cache keeps no exceptions)."""
    return RSAKey.import_key(pem)


def _import(path: Path) -> RSAKey:
    try:
        key = _key_of(path.read_bytes())
    except PermissionError:
        raise KeyFileError(f"{path} cannot be read by the portal's user: give it that owner "
                           f"(mode 0600)") from None
    except OSError as e:    # a folder named *.pem, a failing disk
        raise KeyFileError(f"{path} cannot be read ({e.strerror}): move it out of the key folder "
                           f"(every .pem file there is a signing key)") from None
    except (ValueError, JoseError):
        key = None
    if key is None or not key.is_private:
        raise KeyFileError(f"{path} is not an RSA private key in PEM: move it out of the key "
                           f"folder (every .pem file there is a signing key)")
    return key


def _read(folder: Path, *, strict: bool = True) -> KeyRing:
    """The keys in `folder`. A file that is not one raises KeyFileError when strict; else it
    is logged by name (never its contents) and left out, and KeyFileError means no key is left."""
    keys = []
    for path in _key_files(folder):
        try:
            key = _import(path)
        except KeyFileError as e:
            if strict:
                raise
            log.error("OpenID signing key skipped: %s", e)
            continue
        keys.append(SigningKey(key.thumbprint(), key, _signs_from(path), path))
    if not keys and not strict:
        raise KeyFileError(f"no file in {folder} is an RSA private key in PEM: apps cannot be "
                           f"signed in over OpenID Connect until one is (`portal keys rotate --now` "
                           f"adds one once the others are moved out)")
    return KeyRing(tuple(keys))


def load_keys(folder: Path, *, strict: bool = False, create: bool = True) -> KeyRing:
    """Return the key ring in `folder`, creating the first key (mode 0600) if there is none.

    strict (the command line): a file there that is not a key raises KeyFileError naming it.
    Otherwise (the portal) such a file is logged and skipped, once per change of the folder.
    Without `create` (a production worker), a folder that is missing or holds no key is a
    KeyFileError saying what to run: a worker that made one would sign with a key of its own.
    """
    # Every token is signed with the ring: when the folder is unchanged since it was read (adding
    # or deleting a key changes its mtime), one stat is all it costs.
    if not strict:
        cached = _cache.get(folder)
        if cached is not None:
            try:
                if os.stat(folder).st_mtime_ns == cached[0]:
                    return _ring_or_raise(cached[1])
            except FileNotFoundError:
                pass
    if not (create or strict):
        _refuse_no_key(folder)
    else:
        _make_first_key(folder, strict=strict)
    if strict:
        return _read(folder)
    try:
        stamp = folder.stat().st_mtime_ns   # before reading: a change while reading reads again
    except OSError:         # gone since (a shared folder unmounted): say so as above
        _refuse_no_key(folder)
        raise
    try:
        found: KeyRing | str = _read(folder, strict=False)
    except KeyFileError as e:
        found = str(e)      # kept as words: the same folder answers the same, without a re-read
    with _cache_lock:
        _cache[folder] = (stamp, found)
    return _ring_or_raise(found)


# What a production worker says of a key folder it may not fill: the first key is made once, by
# `portal keys list` (README, "In production"), so that every server signs with the same keys.
NO_KEY = ("PORTAL_OIDC_KEYS_DIR {folder} {what}: apps cannot sign in over OpenID Connect until it "
          "holds the district's keys; run `portal keys list` once, on one server, to make the first "
          "key (every server must see the same folder: a shared one not mounted here looks empty)")


def _refuse_no_key(folder: Path) -> None:
    try:
        there = folder.is_dir()
        empty = there and not _key_files(folder)
    except OSError as e:
        raise KeyFileError(f"PORTAL_OIDC_KEYS_DIR {folder} can't be read ({e.strerror or e}): the "
                           f"portal's user must be able to read it") from None
    if not there:
        raise KeyFileError(NO_KEY.format(folder=folder, what="does not exist"))
    if empty:
        raise KeyFileError(NO_KEY.format(folder=folder, what="holds no key"))


def _make_first_key(folder: Path, *, strict: bool) -> None:
    try:
        folder = _prepare(folder)
        if not _key_files(folder):
            with _FolderLock(folder):
                if not _key_files(folder):
                    _write_new_key(folder, datetime.now(timezone.utc))
    except OSError as e:
        if strict:
            raise               # the command line says it in its own words
        # A read-only or full disk: "unavailable" (503), not a 500 with a traceback.
        raise KeyFileError(f"can't make the first OpenID signing key in {folder} ({e.strerror or e}): "
                           f"the portal's user must be able to write there") from None


def _ring_or_raise(found: "KeyRing | str") -> KeyRing:
    if isinstance(found, str):
        raise KeyFileError(found)
    return found


def presentable_for(settings) -> timedelta:
    """How long after a key stops signing an app may still present a token it signed."""
    # An ID token is good for PORTAL_OIDC_TOKEN_SECONDS (at most an hour), but apps send it back
    # after that as id_token_hint: to /oidc/logout, which takes an expired one and signs the
    # student out without asking while the sign-in it was issued in lasts (hint_is_for), and to
    # /oidc/authorize, expired or not (OpenID Connect Core 3.1.2.1). A sign-in lasts at most
    # PORTAL_SESSION_MAX_HOURS, and a key signed its last tokens the moment it stopped signing:
    # the longer of the two covers every token that can still do something.
    return timedelta(seconds=max(settings.session_max_hours * 3600, settings.oidc_token_seconds))


def rotate_keys(folder: Path, *, keep_for: timedelta, at_once: bool = False,
                retire: bool = False) -> tuple[KeyRing, list[str]]:
    """Add a key that signs PUBLISH_AHEAD seconds from now (or at once); return the ring
    and the kids retired: every key older than the one before the key that signs now that
    stopped signing `keep_for` ago or longer (presentable_for); with `retire`, which needs
    `at_once`: every key older than the new one, for a leaked key, whose tokens then stop
    verifying."""
    if retire and not at_once:
        raise ValueError("retiring the signing key needs a new key that signs at once")
    folder = _prepare(folder)
    with _FolderLock(folder):
        _read(folder)       # refuse before adding a key when a file there is not one
        at = datetime.now(timezone.utc)
        _write_new_key(folder, at if at_once else at + timedelta(seconds=PUBLISH_AHEAD))
        ring = _read(folder)
        keys = ring.keys
        kept = keys.index(ring.signing_key(at)) + (1 if retire else 2)
        # Newest first: keys[i] stopped signing when keys[i - 1] began.
        while not retire and kept < len(keys) and keys[kept - 1].signs_from > at - keep_for:
            kept += 1
        retired = keys[kept:]
        for key in retired:
            key.path.unlink()
    return KeyRing(keys[:kept]), [key.kid for key in retired]
