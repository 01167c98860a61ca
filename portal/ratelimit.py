"""Rate limits kept in Redis (moving windows from the `limits` library)."""
from __future__ import annotations

import ipaddress
import math
import time

import redis
from limits import parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter


def address_key(address: str) -> str:
    """What a limit per address counts under: an IPv4 address itself, but an IPv6 address's /64.
    One computer commonly holds a whole /64 and may take a new address in it for every try, so
    counting single IPv6 addresses would limit nothing."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class RateLimiter:
    """One named limit, such as "10 per 15 minutes", counted per identifier."""

    def __init__(self, client: redis.Redis, limit: str, *, scope: str):
        storage = RedisStorage(
            "redis://",  # ignored: the connection pool below is the portal's own
            connection_pool=client.connection_pool,
            key_prefix="portal:limit",
        )
        self._client = client
        self._window = MovingWindowRateLimiter(storage)
        self._limit = parse(limit)
        self._scope = scope

    @property
    def amount(self) -> int:
        """How many the limit allows in its window (the 10 of "10 per 15 minutes")."""
        return self._limit.amount

    def test(self, *identifiers: str) -> bool:
        """Return True while the identifiers are under the limit."""
        return self._window.test(self._limit, self._scope, *identifiers)

    def hit(self, *identifiers: str) -> bool:
        """Count one attempt; return False when it goes over the limit."""
        return self._window.hit(self._limit, self._scope, *identifiers)

    def clear(self, *identifiers: str) -> None:
        self._window.clear(self._limit, self._scope, *identifiers)

    def seconds_to_wait(self, *identifiers: str) -> int:
        """Whole seconds until the identifiers may try once more (at least 1): when the oldest
        try in the window leaves it."""
        reset = self._window.get_window_stats(self._limit, self._scope, *identifiers).reset_time
        return max(1, math.ceil(reset - time.time()))

    def first_in(self, seconds: int, identifier: str) -> bool:
        """True the first time `identifier` is seen in `seconds` (one atomic SET NX): of two
        requests at the same moment, only one is first."""
        key = self._window.storage.prefixed_key(f"{self._scope}/once/{identifier}")
        return bool(self._client.set(key, 1, nx=True, ex=seconds))

    def clear_in(self, pipe, *identifiers: str) -> None:
        """Queue what clear() does on a Redis pipeline, to go with its other commands."""
        pipe.delete(self._window.storage.prefixed_key(self._limit.key_for(self._scope, *identifiers)))


class AddressLimiter(RateLimiter):
    """A limit per client address, counted as address_key says (an IPv6 client by its /64)."""

    def test(self, address: str) -> bool:
        return super().test(address_key(address))

    def hit(self, address: str) -> bool:
        return super().hit(address_key(address))

    def clear(self, address: str) -> None:
        super().clear(address_key(address))
