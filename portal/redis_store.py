"""The Redis connection shared by sessions, rate limits and one-time codes."""
from __future__ import annotations

import redis
from flask import Flask, current_app


class RedisUnavailable(Exception):
    """Redis did not answer; sign-in and sessions wait until it is back. Its argument, if any,
    says why (redis_said)."""


# Redis answers, and says no to the portal: a wrong password is not an outage, and "start Redis"
# or "cannot be reached" sent operators looking at a server that was running.
REFUSED_PASSWORD = "Redis refused the password in PORTAL_REDIS_URL (wrong, or none given)"


def refused_password(e: BaseException) -> bool:
    """Whether Redis turned the portal's password down, or asked for one it was not given."""
    if isinstance(e, (redis.AuthenticationError, redis.exceptions.AuthenticationWrongNumberOfArgsError)):
        return True
    return isinstance(e, redis.ResponseError) and str(e).startswith(("NOAUTH", "WRONGPASS"))


def redis_said(e: BaseException) -> str:
    """What a Redis failure was, for the log and the command line (never the address)."""
    if refused_password(e):
        return REFUSED_PASSWORD
    if isinstance(e, RedisUnavailable) and e.args:
        return str(e.args[0])
    return type(e).__name__


class RedisStore:
    """Flask extension holding one client (and its connection pool) per app."""

    def init_app(self, app: Flask) -> None:
        app.extensions["redis"] = redis.Redis.from_url(
            app.config["REDIS_URL"],
            socket_connect_timeout=1.0,
            socket_timeout=2.0,
            health_check_interval=30,
            retry_on_timeout=False,
        )

    @property
    def client(self) -> redis.Redis:
        return current_app.extensions["redis"]


redis_store = RedisStore()
