"""Rate limits kept in Redis (moving windows from the `limits` library)."""
from __future__ import annotations

import ipaddress
import logging
import math
import time
from dataclasses import dataclass

import redis
from limits import parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.commands.core import Script

log = logging.getLogger(__name__)

# KEYS: a moving window (the times of its tries, newest first, as `limits` keeps them); ARGV: two
# times. Remove the oldest try counted between them (any of equal times is the same).
_TAKE_BACK = Script(None, b"""
local from, to, found = tonumber(ARGV[1]), tonumber(ARGV[2]), nil
for _, entry in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local at = tonumber(entry)
  if at and at < from then break end
  if at and at <= to then found = entry end
end
if not found then return 0 end
return redis.call('LREM', KEYS[1], -1, found)
""")


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

    def count(self, *identifiers: str) -> Hit | None:
        """Count one attempt as hit() does; return it, for taking back should the attempt end in
        the portal's own failure, or None when it goes over the limit (nothing was counted)."""
        since = time.time()
        if not self.hit(*identifiers):
            return None
        return Hit(self._client, self._key(*identifiers), since, time.time())

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
        pipe.delete(self._key(*identifiers))

    def _key(self, *identifiers: str) -> str:
        return self._window.storage.prefixed_key(self._limit.key_for(self._scope, *identifiers))


@dataclass(frozen=True)
class Hit:
    """One attempt a limit counted (RateLimiter.count), between two times of this server's clock."""

    client: redis.Redis
    key: str
    since: float
    until: float

    def take_back(self) -> None:
        """Uncount the attempt: it ended in the portal's own failure (the database or Redis away),
        not in an answer. The window's entry of that moment goes (one counted beside it at the same
        instant is the same count), or none when the count was cleared meanwhile. A failure here
        is logged: the attempt then stays counted, as it was."""
        try:
            # A microsecond either side: Redis keeps the times to the microsecond.
            _TAKE_BACK([self.key], [self.since - 1e-6, self.until + 1e-6], client=self.client)
        except redis.RedisError as e:
            log.warning("a try that failed could not be taken back from its limit: %s",
                        type(e).__name__)


class AddressLimiter(RateLimiter):
    """A limit per client address, counted as address_key says (an IPv6 client by its /64)."""

    def test(self, address: str) -> bool:
        return super().test(address_key(address))

    def hit(self, address: str) -> bool:
        return super().hit(address_key(address))

    def count(self, address: str) -> Hit | None:
        return super().count(address_key(address))

    def clear(self, address: str) -> None:
        super().clear(address_key(address))
