"""Ending badge sessions: all of a student's (badge void), or the one on a kiosk (a new scan).

A badge session carries auth_method "badge..." and, from a kiosk, kiosk_device;
portal.sessions.end_sessions_where ends those that match.
"""
from __future__ import annotations

import redis

from portal.sessions import end_session, end_sessions_where, take_session

BADGE_METHODS = ("badge", "badge+pin", "badge+picture")
_CURRENT = "portal:kiosk:current:"  # device id -> "person-id session-id" of the session on it
_REVOKED = "portal:badge-revoked:"  # badge id -> 1, for a while after the badge was voided
REVOKED_SECONDS = 600               # longer than any sign-in takes from its check to its save
_DEVICE_REVOKED = "portal:kiosk-revoked:"  # device id -> 1, for a while after it was revoked


def is_badge_session(data: dict) -> bool:
    return data.get("auth_method") in BADGE_METHODS


def end_badge_sessions(client: redis.Redis, person_id: int) -> int:
    """End every session the person started with a badge; password sessions stay."""
    return end_sessions_where(client, person_id, is_badge_session)


def end_sessions_of_revoked(client: redis.Redis, revoked: list[tuple[int, int]]) -> None:
    """After voided badges were committed ((badge id, person id) pairs): end their owners' badge
    sessions, including one whose sign-in checked the badge just before the void and is saved
    just after it. Each badge is marked revoked first; a sign-in's save looks for the mark in the
    same step (watch_badge), so either the save came first and its session is ended here, or
    the mark did and the sign-in ends its own session."""
    if not revoked:
        return
    mark_badges_revoked(client, [badge_id for badge_id, _ in revoked])
    for person_id in sorted({person_id for _, person_id in revoked}):
        end_badge_sessions(client, person_id)


def mark_badges_revoked(client: redis.Redis, badge_ids) -> None:
    """Mark these badges as no longer working (for REVOKED_SECONDS): a badge sign-in checked just
    before and saved just after ends its own session (watch_badge). Before ending their sessions."""
    pipe = client.pipeline(transaction=False)
    for badge_id in badge_ids:
        pipe.set(_REVOKED + str(badge_id), 1, ex=REVOKED_SECONDS)
    pipe.execute()


def mark_device_revoked(client: redis.Redis, device_id: int) -> None:
    """As mark_badges_revoked, for a kiosk device: before its session is ended."""
    client.set(_DEVICE_REVOKED + str(device_id), 1, ex=REVOKED_SECONDS)


def watch_badge(session, badge_id: int, person_id: int, client: redis.Redis,
                device_id: int | None = None) -> None:
    """Have this session's save (a badge sign-in) end it again at once if the badge was voided,
    or its kiosk device revoked, meanwhile (see end_sessions_of_revoked, and revoke_device).
    One EXISTS in the save's own step: either the save came first and the one ending sessions
    finds it, or the mark did and the sign-in ends its own session."""
    keys = [_REVOKED + str(badge_id)]
    if device_id is not None:
        keys.append(_DEVICE_REVOKED + str(device_id))

    def then(revoked) -> None:
        if revoked:
            end_session(client, person_id, session.sid)
    session.after_save.append((lambda pipe: pipe.exists(*keys), then))


def end_device_session(client: redis.Redis, device_id: int) -> dict | None:
    """End the session of whoever last signed in on this kiosk device; return what it held (the
    SAML apps it signed in to hear of its end in the browser, at the next child's hand-off)."""
    raw = client.getdel(_CURRENT + str(device_id))
    if raw is None:
        return None
    person_id, _, sid = raw.decode().partition(" ")
    if not sid:  # written before sessions were named here: find it by what it holds
        end_sessions_where(client, int(person_id), lambda data: data.get("kiosk_device") == device_id)
        return None
    return take_session(client, int(person_id), sid)


def mark_device_session(session, device_id: int, person_id: int, seconds: int) -> None:
    """Remember that this session (being saved) is now the one on this device; the mark is
    written in the session's own save."""
    value = f"{person_id} {session.sid}"
    session.on_save.append(
        lambda pipe: pipe.set(_CURRENT + str(device_id), value, ex=max(seconds, 1)))
