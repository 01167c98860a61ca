"""Badge sign-in: redeem a scanned token, then hand the sign-in to the device's browser.

Every refusal of a token is the same BadgeRejected, whatever the reason (not a badge, unknown,
voided, expired, another school, a grade that does not use badges, a disabled student): the
device learns nothing it could use to tell tokens apart. Voided badges that come back are audited.
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import redis
from redis.commands.core import Script
from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import Session, contains_eager

from portal import audit
from portal.badges.expiry import Clock, utcnow
from portal.badges.policy import EffectivePolicy, policy_from_row
from portal.badges.token import looks_like_badge, token_hash
from portal.errors import PortalError
from portal.models import Badge, BadgePolicy, KioskDevice, Person, PersonSchool
from portal.ratelimit import AddressLimiter, RateLimiter

log = logging.getLogger(__name__)

HANDOFF_SECONDS = 30
_HANDOFF = "portal:kiosk:handoff:"
_LATEST = "portal:kiosk:latest-handoff:"   # device id -> the key of its newest hand-off
# device id -> the SAML apps ([app id, NameID, format, SessionIndex], JSON) that sessions ended
# on the device signed in to, owed a sign-out in its browser: the next hand-off opened there
# takes them. Kept per device, not per hand-off: a hand-off cancelled by a second scan, or never
# opened, must not lose them.
_OWED = "portal:kiosk:saml-logout:"
OWED_SECONDS = 12 * 3600
# device id -> the highest scan number it sent since it last bound its browser. A kiosk numbers
# its scans (1, 2, 3... from each start); a scan it gave up on (the portal stalled) may reach the
# portal after a newer one, and must then change nothing: not end the newer child's session,
# nor become the device's latest hand-off, which would leave the link the kiosk opened "run out".
_SEQ = "portal:kiosk:scan-seq:"
SEQ_SECONDS = 12 * 3600
MAX_SEQ = 2 ** 53 - 1      # exact in JSON and in Lua's numbers
# A badge's token hash (the first 32 characters, as its limit counts it) -> when (Unix seconds)
# its limit lets it scan again, set when the limit refused it: the class page says so, where the
# kiosk can only say "That badge didn't work", as for any refused card.
_LIMITED = "portal:badge-limited:"

# KEYS: the device's scan number; ARGV: this scan's, seconds. True when it is the newest yet.
_CLAIM = Script(None, b"""
if tonumber(ARGV[1]) <= tonumber(redis.call('GET', KEYS[1]) or '0') then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
""")
# KEYS: the device's scan number, its latest hand-off, the new hand-off; ARGV: this scan's number,
# the hand-off's data, seconds. Store the hand-off as the device's latest unless a newer scan has
# come meanwhile (two scans may be checked at once: the older must not be set last).
_START = Script(None, b"""
if tonumber(ARGV[1]) < tonumber(redis.call('GET', KEYS[1]) or '0') then return 0 end
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[3])
redis.call('SET', KEYS[2], KEYS[3], 'EX', ARGV[3])
return 1
""")

# KEYS: the hand-off; ARGV: the device prefixes (latest, owed). Take a hand-off (whoever opens it,
# it is gone), and give it back only if it is its device's newest: after a second scan the first
# child's link, opened late (two tabs load in either order), must not sign the first child in
# over the second. With it come the sign-outs the device owes (taken too).
_TAKE = Script(None, b"""
local raw = redis.call('GETDEL', KEYS[1])
if not raw then return false end
local ok, data = pcall(cjson.decode, raw)
if not ok or type(data) ~= 'table' or type(data['device_id']) ~= 'number' then return false end
local device = string.format('%d', data['device_id'])
local latest = ARGV[1] .. device
if redis.call('GET', latest) ~= KEYS[1] then return false end
redis.call('DEL', latest)
local owed = redis.call('LPOP', ARGV[2] .. device, 100) or {}
table.insert(owed, 1, raw)
return owed
""")


class BadgeRejected(PortalError):
    status = 403
    title = "That badge didn't work"
    advice = "Ask your teacher for help."


class TooManyScans(PortalError):
    status = 429
    title = "Too many scans"
    advice = "Wait a minute, then scan again."
    retry_after = 60      # seconds; the limit's own, where it is known


class HandoffInvalid(PortalError):
    status = 403
    title = "That sign-in has run out"
    advice = "Scan your badge again."


class BrowserNotBound(HandoffInvalid):
    """The hand-off was opened in a browser that is not the scanning device's bound browser."""
    title = "This browser is not set up for the classroom device"
    advice = "Scan your badge again in a moment. If this page comes back, ask your teacher."


class BadgeLimits:
    """Scan limits: per kiosk device, per badge, per address (browser scanner); and the
    second-factor failure limit per badge, after which the student needs a teacher."""

    def __init__(self, client: redis.Redis, *, per_device: str, per_badge: str,
                 per_address: str, factor: str):
        self.client = client
        self.device = RateLimiter(client, per_device, scope="badge-device")
        self.badge = RateLimiter(client, per_badge, scope="badge-badge")
        self.address = AddressLimiter(client, per_address, scope="badge-address")
        self.factor = RateLimiter(client, factor, scope="badge-factor")

    @classmethod
    def from_settings(cls, client: redis.Redis, settings) -> "BadgeLimits":
        return cls(client, per_device=settings.badge_limit_per_device,
                   per_badge=settings.badge_limit_per_badge,
                   per_address=settings.badge_limit_per_address,
                   factor=settings.badge_factor_limit)


@dataclass(frozen=True)
class Accepted:
    """A badge that may sign its student in, here and now (and the policy it was checked by)."""
    person: Person
    badge: Badge
    device: KioskDevice | None
    policy: EffectivePolicy


@dataclass(frozen=True)
class Handoff:
    person_id: int
    badge_id: int
    device_id: int
    # The SAML apps the device's last session signed in to ([app id, NameID, format,
    # SessionIndex] each): the browser tells them of its end on the way to the new session.
    saml_logout: tuple = ()

    def give_back(self, client: redis.Redis) -> None:
        """The hand-off was refused after it was taken (another browser, a badge voided since):
        the sign-outs it carried stay owed to the device's next hand-off."""
        if self.saml_logout:
            pipe = client.pipeline()
            owe_saml_logout(pipe, self.device_id, self.saml_logout)
            pipe.execute()


def _reject(reason: str) -> BadgeRejected:
    # The reason goes to the operator's log only (no token, no person), never to the device.
    log.info("badge refused: %s", reason)
    return BadgeRejected()


@dataclass(frozen=True)
class Found:
    """A badge with all that checking it reads: its student, whether the student is still at
    the badge's school, and that school's policy. One statement finds it (a scan is hot)."""
    badge: Badge | None
    member: bool = False
    policy: EffectivePolicy | None = None   # set whenever badge is


_FIND = (select(Badge, PersonSchool.person_id, BadgePolicy)
         .join(Badge.person).options(contains_eager(Badge.person))
         .outerjoin(PersonSchool, and_(PersonSchool.person_id == Badge.person_id,
                                       PersonSchool.school_id == Badge.school_id))
         .outerjoin(BadgePolicy, BadgePolicy.school_id == Badge.school_id))
_BY_HASH = _FIND.where(Badge.token_hash == bindparam("token_hash"))
_BY_ID = _FIND.where(Badge.id == bindparam("badge_id"))


def find_badge(db: Session, *, token_hash: str | None = None, badge_id: int | None = None) -> Found:
    """The badge with this token hash (or id), and what check_badge needs, in one statement."""
    if token_hash is not None:
        row = db.execute(_BY_HASH, {"token_hash": token_hash}).first()
    else:
        row = db.execute(_BY_ID, {"badge_id": badge_id}).first()
    if row is None:
        return Found(None)
    badge, member, policy_row = row
    return Found(badge, member is not None, policy_from_row(badge.school_id, policy_row))


def check_badge(found: Found, now: datetime, *, device: KioskDevice | None = None,
                browser: bool = False, address: str | None = None) -> str | None:
    """Why this badge (from find_badge) may not sign in now from here (None: it may): from
    `device`, or from the browser scanner (`browser`) at the client `address`."""
    badge = found.badge
    if badge is None:
        return "unknown"
    if badge.revoked_at is not None:
        return "voided"
    if now >= badge.expires_at:
        return "expired"
    person = badge.person
    if not person.enabled:
        return "disabled"
    if person.held_at is not None:
        return "on hold"
    if not found.member:
        return "left school"
    if device is not None and device.school_id != badge.school_id:
        return "other school"
    policy = found.policy
    if browser and not policy.allow_browser_scanner:
        return "browser scanner off"
    if browser and not policy.scanner_works_from(address):
        return "network"
    if not policy.allows(person):
        return "grade"
    return None


def redeem_badge(db: Session, limits: BadgeLimits, token: object, *,
                 take_back_with: list[Callable], device: KioskDevice | None = None,
                 address: str | None = None, clock: Clock = utcnow,
                 commit: bool = True) -> Accepted:
    """Check a scanned token from a kiosk device (or, with `address`, the browser scanner).

    Raises TooManyScans or BadgeRejected; on success records when and where the badge was used
    (commit=False leaves the commit to the caller, who may first read what a commit expires).
    The badge's count of scans is taken back should the scan end in the portal's own failure
    (the database or Redis away: the 503 page), queued on `take_back_with` (the session's
    if_failed): a kiosk sends a badge held up every few seconds through an outage, and the
    badge must not be refused as tried too often after it.
    """
    if (device is None) == (address is None):
        raise ValueError("a scan comes from a device or from a browser address")
    if device is not None and not limits.device.hit(str(device.id)):
        limited = TooManyScans()
        limited.retry_after = limits.device.seconds_to_wait(str(device.id))
        raise limited
    if address is not None and not limits.address.hit(address):
        raise TooManyScans()
    if not isinstance(token, str) or not looks_like_badge(token):
        raise _reject("not a badge")
    digest = token_hash(token)
    counted = limits.badge.count(digest[:32])
    if counted is None:
        # Refused like any other failure, not "too many tries": on a kiosk that pauses every
        # scan, so one child trying a refused card again and again would stop the whole class.
        # Successful scans count too: the limit is there for a badge's token copied (a photo of
        # the card) and used again and again, and such a token works. The teacher's class page
        # says why the card was refused, and until when.
        _note_limited(limits, digest[:32])
        raise _reject("too many tries with this badge")
    take_back_with.append(counted.take_back)

    found = find_badge(db, token_hash=digest)
    badge, now = found.badge, clock()
    reason = check_badge(found, now, device=device, browser=address is not None, address=address)
    if reason is not None:
        # Refused: it counts, whatever comes after (as a wrong password does), its record too.
        take_back_with.remove(counted.take_back)
    if reason == "voided":
        audit.record("badge_voided_reuse", person=badge.person, commit=True, data={
            "badge_id": badge.id, "device_id": device.id if device else None,
            "via": "kiosk" if device else "browser", "school_id": badge.school_id,
            "reason": badge.revoked_reason})
    if reason is not None:
        raise _reject(reason)
    badge.last_used_at = now
    badge.last_used_device_id = device.id if device else None
    if commit:
        db.commit()
    return Accepted(badge.person, badge, device, found.policy)


def _note_limited(limits: BadgeLimits, key: str) -> None:
    wait = limits.badge.seconds_to_wait(key)
    limits.client.set(_LIMITED + key, int(time.time()) + wait, ex=wait)


def limited_until(client: redis.Redis, badges) -> dict[int, datetime]:
    """Badge id -> when it may scan again, for those of `badges` its limit refused lately and
    still would (one round trip)."""
    badges = [b for b in badges if b is not None]
    if not badges:
        return {}
    found = {}
    for badge, value in zip(badges, client.mget([_LIMITED + b.token_hash[:32] for b in badges])):
        if value is not None and value.isdigit():
            found[badge.id] = datetime.fromtimestamp(int(value), timezone.utc)
    return found


def _handoff_key(code: str) -> str:
    return _HANDOFF + hashlib.sha256(code.encode()).hexdigest()


def is_scan_number(value) -> bool:
    return type(value) is int and 0 < value <= MAX_SEQ


def claim_scan(client: redis.Redis, device_id: int, seq: int) -> bool:
    """True when scan number `seq` is the newest the device has sent since it bound its
    browser (and from now on it is); False for a scan it sent before one already seen."""
    return bool(_CLAIM([_SEQ + str(device_id)], [seq, SEQ_SECONDS], client=client))


def restart_scan_numbers(client: redis.Redis, device_id: int) -> None:
    """The device is binding its browser (a kiosk does at each start): its numbers start over."""
    client.delete(_SEQ + str(device_id))


def start_handoff(client: redis.Redis, handoff: Handoff, *, seq: int | None = None) -> str | None:
    """A single-use code, 30 seconds, for the device's browser to finish the sign-in (and, on
    the way, to tell the last session's SAML apps that it ended: the hand-off's saml_logout).
    With the scan's number `seq`: None when a newer scan from the device came meanwhile."""
    code = secrets.token_urlsafe(32)
    # Its 30 seconds are Redis's (the key's own expiry), not this server's clock: the browser's
    # request may reach another server of the portal, whose clock may be off by more than that.
    data = {"person_id": handoff.person_id, "badge_id": handoff.badge_id,
            "device_id": handoff.device_id}
    key, device = _handoff_key(code), str(handoff.device_id)
    pipe = client.pipeline()
    owe_saml_logout(pipe, handoff.device_id, handoff.saml_logout)
    if seq is not None:
        # The sign-outs stay owed to the device whatever comes of this hand-off.
        pipe.execute()
        started = _START([_SEQ + device, _LATEST + device, key],
                         [seq, json.dumps(data), HANDOFF_SECONDS], client=client)
        return code if started else None
    pipe.set(key, json.dumps(data), ex=HANDOFF_SECONDS)
    pipe.set(_LATEST + device, key, ex=HANDOFF_SECONDS)
    pipe.execute()
    return code


def cancel_handoff(pipe, device_id: int) -> None:
    """Queue on `pipe` that the device's hand-off not yet opened (if any) signs no one in: a
    refused scan at the device signs its child out, and a link on its way must not undo that."""
    pipe.delete(_LATEST + str(device_id))


def take_handoff(client: redis.Redis, code: str) -> Handoff:
    """Use up a hand-off code (whoever opens it, it is gone) and return what it carried. One
    that has run out is gone from Redis already."""
    taken = _TAKE([_handoff_key(code)], [_LATEST, _OWED], client=client) if 0 < len(code) <= 100 else None
    if not taken:
        raise HandoffInvalid()
    raw, owed = taken[0], taken[1:]
    data = json.loads(raw)
    return Handoff(data["person_id"], data["badge_id"], data["device_id"], tuple(_owed(owed)))


def owe_saml_logout(pipe, device_id: int, participants) -> None:
    """Queue on `pipe` that the device's browser owes these SAML apps a sign-out (no command when
    there are none)."""
    if participants:
        pipe.rpush(_OWED + str(device_id), *(json.dumps(list(p)) for p in participants))
        pipe.expire(_OWED + str(device_id), OWED_SECONDS)


def _owed(entries) -> list:
    found = []
    for entry in entries:
        try:
            value = json.loads(entry)
        except (ValueError, TypeError):
            continue
        if isinstance(value, list) and value not in found:
            found.append(value)
    return found


def accept_handoff(db: Session, handoff: Handoff, browser_device: KioskDevice | None, *,
                   clock: Clock = utcnow) -> Accepted:
    """Check that the browser is the scanning device's own and that the badge still works."""
    if browser_device is None or browser_device.id != handoff.device_id:
        raise HandoffInvalid()      # the view tells a browser not bound to the device so
    found = find_badge(db, badge_id=handoff.badge_id)
    badge = found.badge
    if badge is None or badge.person_id != handoff.person_id:
        raise HandoffInvalid()
    if check_badge(found, clock(), device=browser_device) is not None:
        raise HandoffInvalid()
    return Accepted(badge.person, badge, browser_device, found.policy)
