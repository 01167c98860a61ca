"""Ending badge sessions: all of a student's (badge void), or the one on a kiosk (a new scan).

Built on portal.sessions' Redis layout: sessions under PREFIX + sid, indexed per person.
A badge session carries auth_method "badge..." and, from a kiosk, kiosk_device.
"""
from __future__ import annotations

import json
from typing import Callable

import redis

from portal.sessions import PERSON_INDEX, PREFIX

BADGE_METHODS = ("badge", "badge+pin", "badge+picture")
_CURRENT = "portal:kiosk:current:"  # device id -> person id whose session is on that device


def is_badge_session(data: dict) -> bool:
    return data.get("auth_method") in BADGE_METHODS


def end_sessions_where(client: redis.Redis, person_id: int,
                       predicate: Callable[[dict], bool]) -> int:
    """End the person's sessions whose stored data matches; return how many ended."""
    key = PERSON_INDEX + str(person_id)
    sids = [sid.decode() for sid in client.smembers(key)]
    if not sids:
        return 0
    raws = client.mget([PREFIX + sid for sid in sids])
    doomed, stale = [], []
    for sid, raw in zip(sids, raws):
        if raw is None:
            stale.append(sid)
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            data = {}
        if not isinstance(data, dict) or predicate(data):
            doomed.append(sid)
    if not doomed and not stale:
        return 0
    pipe = client.pipeline()
    for sid in doomed:
        pipe.delete(PREFIX + sid)
    for sid in doomed + stale:
        pipe.srem(key, sid)
    results = pipe.execute()
    return sum(1 for n in results[:len(doomed)] if n)


def end_badge_sessions(client: redis.Redis, person_id: int) -> int:
    """End every session the person started with a badge; password sessions stay."""
    return end_sessions_where(client, person_id, is_badge_session)


def end_device_session(client: redis.Redis, device_id: int) -> int:
    """End the session of whoever last signed in on this kiosk device."""
    raw = client.getdel(_CURRENT + str(device_id))
    if raw is None:
        return 0
    return end_sessions_where(client, int(raw),
                              lambda data: data.get("kiosk_device") == device_id)


def mark_device_session(client: redis.Redis, device_id: int, person_id: int,
                        seconds: int) -> None:
    """Remember that the person's session is now the one on this device."""
    client.set(_CURRENT + str(device_id), str(person_id), ex=max(seconds, 1))
