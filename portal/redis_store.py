"""The Redis connection shared by sessions, rate limits and one-time codes."""
from __future__ import annotations

import redis
from flask import Flask, current_app


class RedisUnavailable(Exception):
    """Redis did not answer; sign-in and sessions wait until it is back."""


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
