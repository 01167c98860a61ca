"""Kiosk devices: pairing codes, enrollment, bearer credentials, browser binding, revocation.

A teacher or admin asks for a pairing code (8 characters, 10 minutes, single use, in Redis).
The device exchanges it once for a credential: 256 random bits it sends as a Bearer token with
every scan; the portal keeps only its SHA-256. The device then binds its browser: it asks for a
one-time bind URL (30 seconds) and opens it, and the portal sets a cookie holding a browser key
(only its hash is kept). Hand-off URLs open only in the browser holding that cookie.

A browser can lose its binding (cookies cleared, a guest window, the bind link opened after its
30 seconds on a slow boot): the portal then asks the device to bind it again (a flag in Redis for
REBIND_SECONDS, set when a hand-off or a late bind link is opened in a browser that is not the
device's), and the device's next scan is answered "bind again" (kiosk_views.badge) rather than
with a hand-off its browser would refuse. The flag never unbinds anything: the browser that holds
the cookie keeps it, and whoever holds a stolen hand-off link can at most cause one more binding.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

import redis
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from portal import audit
from portal.admin.services import AdminError, one_line, printable_line
from portal.badges.expiry import Clock, utcnow
from portal.badges.permissions import may_manage_school, may_pair_for_school
from portal.badges.sessions import end_device_session, mark_device_revoked
from portal.db import parse_id
from portal.errors import PortalError, as_sentence
from portal.models import KioskDevice, Person, School


PAIR_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: read aloud and typed by hand
PAIR_LENGTH = 8
PAIR_SECONDS = 600
BIND_SECONDS = 30
# An expired bind code is kept this much longer, so that opening it late asks the device to bind
# again (it no longer binds anything).
BIND_LATE_SECONDS = 600
REBIND_SECONDS = 600     # how long "bind again" waits for the device's next scan
CREDENTIAL_PREFIX = "kd1_"
LAST_SEEN_EVERY = timedelta(minutes=1)  # no database write on every scan of a morning rush
MAX_DEVICE_NAME = 255                   # KioskDevice.name is VARCHAR(255)

_PAIR = "portal:kiosk:pair:"
_BIND = "portal:kiosk:bind:"
_REBIND = "portal:kiosk:rebind:"   # device id -> its browser must be bound again
# Built once: every scan looks its device up by credential, every hand-off by id (Session.get
# builds its statement anew on each call).
_BY_SECRET = select(KioskDevice).where(KioskDevice.secret_hash == bindparam("secret_hash"))
_BY_ID = select(KioskDevice).where(KioskDevice.id == bindparam("device_id"))


class PairingFailed(PortalError):
    status = 400
    title = "That pairing code didn't work"
    advice = "Codes work once, for 10 minutes. Ask for a new one."


class BadDeviceName(PortalError):
    """A device name staff typed that is not one line of plain text: refused, no code made."""
    status = 400
    title = "That device name can't be used"

    def __init__(self, reason: str):
        super().__init__(advice=f"{as_sentence(reason)} Type it again in plain words; no code was made.")
        self.reason = reason


class KioskNotPermitted(PortalError):
    status = 403
    title = "You can't manage that school's devices"
    advice = "Ask the school's admin."


class DeviceSessionNotEnded(PortalError):
    """The device was revoked (committed), but Redis went away before the session open on it
    ended: whoever revoked it must hear that the rerun is still needed."""
    status = 503
    title = "The device can no longer sign anyone in, but the session open on it was not ended"
    advice = "The session store went away: revoke the device again in a minute to end it."


@dataclass(frozen=True)
class PairingCode:
    code: str


@dataclass(frozen=True)
class EnrolledDevice:
    """A new device and its credential: given to the device once, never shown again."""
    device: KioskDevice
    credential: str


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def normalize_code(text: str | None) -> str:
    """Read a pairing code as typed: any case, with spaces or dashes."""
    return "".join(ch for ch in (text or "").upper() if ch not in " -")[:32]


def device_name(typed: str) -> str:
    """The name staff typed for a new device, as one line (runs of white space one space), or
    BadDeviceName saying why not: it is printed by `portal kiosk list`, where a control
    character would be obeyed by the admin's terminal, and shown on the staff pages."""
    try:
        return one_line(typed, "device name", MAX_DEVICE_NAME)
    except AdminError as e:
        raise BadDeviceName(str(e)) from None


def create_pairing_code(db: Session, client: redis.Redis, school: School, *,
                        actor: Person | None = None, name: str = "") -> PairingCode:
    """Make a single-use pairing code for a new device of the school (10 minutes), to be
    called `name` (BadDeviceName if that is not one line of plain text)."""
    if actor is not None and not may_pair_for_school(db, actor, school):
        raise KioskNotPermitted()
    # Its 10 minutes are Redis's (the key's expiry): the device may enroll through another
    # server of the portal, whose clock may differ from this one's.
    data = json.dumps({"school_id": school.id, "name": device_name(name),
                       "actor_id": actor.id if actor else None})
    while True:
        code = "".join(secrets.choice(PAIR_ALPHABET) for _ in range(PAIR_LENGTH))
        if client.set(_PAIR + _sha256(code), data, ex=PAIR_SECONDS, nx=True):
            return PairingCode(code)


def enroll_device(db: Session, client: redis.Redis, code: str, *, name: str | None = None,
                  clock: Clock = utcnow) -> EnrolledDevice:
    """Exchange a pairing code (once) for a device credential."""
    code = normalize_code(code)
    raw = client.getdel(_PAIR + _sha256(code)) if len(code) == PAIR_LENGTH else None
    now = clock()
    if raw is None:
        raise PairingFailed()
    data = json.loads(raw)
    school = db.get(School, data["school_id"])
    if school is None:
        raise PairingFailed()
    actor = db.get(Person, data["actor_id"]) if data.get("actor_id") else None
    if data.get("actor_id") and (actor is None or not may_pair_for_school(db, actor, school)):
        # Whoever made the code was put on hold, disabled, removed or moved since: it goes
        # with their right to pair.
        raise PairingFailed()
    credential = CREDENTIAL_PREFIX + secrets.token_urlsafe(32)
    # The name the code was made with; else the one the device sent, which no one checked: made
    # one plain line rather than refused (the device is past the point of asking anyone).
    label = (printable_line(data.get("name") or "", MAX_DEVICE_NAME)
             or printable_line(name or "", MAX_DEVICE_NAME) or "Classroom device")
    device = KioskDevice(school_id=school.id, name=label, secret_hash=_sha256(credential),
                         created_at=now, created_by_id=data.get("actor_id"), last_seen_at=now)
    db.add(device)
    db.flush()
    audit.record("kiosk_enrolled", actor=actor, commit=False,
                 data={"device_id": device.id, "school_id": school.id, "name": label})
    db.commit()
    return EnrolledDevice(device, credential)


def authenticate_device(db: Session, credential: str | None, *,
                        clock: Clock = utcnow) -> KioskDevice | None:
    """The enrolled, unrevoked device holding this credential, or None."""
    if not credential or not credential.startswith(CREDENTIAL_PREFIX) or len(credential) > 100:
        return None
    device = db.scalar(_BY_SECRET, {"secret_hash": _sha256(credential)})
    if device is None or device.revoked_at is not None:
        return None
    now = clock()
    if device.last_seen_at is None or now - device.last_seen_at >= LAST_SEEN_EVERY:
        device.last_seen_at = now
        db.commit()
    return device


def list_devices(db: Session, school: School, *, actor: Person | None = None) -> list[KioskDevice]:
    """The school's devices, newest first, revoked ones included."""
    if actor is not None and not may_manage_school(db, actor, school):
        raise KioskNotPermitted()
    return list(db.scalars(select(KioskDevice).where(KioskDevice.school_id == school.id)
                           .order_by(KioskDevice.created_at.desc(), KioskDevice.id.desc())))


def revoke_device(db: Session, client: redis.Redis, device: KioskDevice, *,
                  actor: Person | None = None, clock: Clock = utcnow) -> None:
    """Refuse the device from now on and end the session open on it."""
    if actor is not None and not may_manage_school(db, actor, device.school):
        raise KioskNotPermitted()
    # Redis before the database: a device revoked with its session left open is the half-done
    # state to avoid (should Redis go between the two, a rerun still ends the session).
    client.ping()
    if device.revoked_at is None:
        device.revoked_at = clock()
        device.browser_key_hash = None
        audit.record("kiosk_revoked", actor=actor, commit=False,
                     data={"device_id": device.id, "school_id": device.school_id})
        db.commit()
    try:
        # Marked first: a hand-off that checked the device just before the commit and saves its
        # session just after this ends it itself (found by review: it lived on, on a revoked device).
        mark_device_revoked(client, device.id)
        end_device_session(client, device.id)
    except redis.RedisError:
        raise DeviceSessionNotEnded() from None


def start_browser_binding(client: redis.Redis, device: KioskDevice) -> str:
    """A single-use code (30 seconds) the device opens in its browser to bind it. Kept
    BIND_LATE_SECONDS longer, to tell a late one from a made-up one; the time left on its key
    (Redis's clock, not a server's: another server of the portal may open it) says which."""
    code = secrets.token_urlsafe(32)
    client.set(_BIND + _sha256(code), json.dumps({"device_id": device.id}),
               ex=BIND_SECONDS + BIND_LATE_SECONDS)
    return code


def finish_browser_binding(db: Session, client: redis.Redis, code: str) -> str | None:
    """Bind the browser that opened `code`; return the cookie value for it, or None. A code
    opened after its 30 seconds binds nothing, but asks the device to bind again."""
    if not 0 < len(code) <= 100:
        return None
    stored = _BIND + _sha256(code)
    pipe = client.pipeline()    # MULTI: the time left, and the code taken, at one moment
    pipe.pttl(stored)
    pipe.getdel(stored)
    left_ms, raw = pipe.execute()
    if raw is None:
        return None
    device_id, late = _device_of(raw), left_ms < BIND_LATE_SECONDS * 1000
    device = db.get(KioskDevice, device_id) if device_id is not None else None
    if device is None or device.revoked_at is not None:
        return None
    if late:
        ask_to_bind_again(client, device.id)
        return None
    key = secrets.token_urlsafe(32)
    # One browser per device: binding a new one unbinds the previous.
    device.browser_key_hash = _sha256(key)
    db.commit()
    client.delete(_REBIND + str(device.id))
    return f"{device.id}.{key}"


def _device_of(raw: bytes) -> int | None:
    """The device id of a stored bind code."""
    try:
        return int(json.loads(raw)["device_id"])
    except (ValueError, TypeError, KeyError):
        return None


def ask_to_bind_again(client: redis.Redis, device_id: int) -> None:
    """The device's browser is not (or no longer) bound: its next scan is answered "bind
    again". Nothing is unbound."""
    client.set(_REBIND + str(device_id), "1", ex=REBIND_SECONDS)


def needs_binding(client: redis.Redis, device: KioskDevice) -> bool:
    """True when the device has no bound browser, or the portal saw its hand-off or bind link
    opened in a browser that is not bound to it."""
    return not device.browser_key_hash or bool(client.exists(_REBIND + str(device.id)))


def device_for_browser(db: Session, cookie: str | None) -> KioskDevice | None:
    """The unrevoked device whose bound browser sent this cookie, or None."""
    written_id, _, key = (cookie or "").partition(".")
    device_id = parse_id(written_id)
    if device_id is None or not key or len(key) > 100:
        return None
    device = db.scalar(_BY_ID, {"device_id": device_id})
    if device is None or device.revoked_at is not None or not device.browser_key_hash:
        return None
    if not secrets.compare_digest(device.browser_key_hash, _sha256(key)):
        return None
    return device
