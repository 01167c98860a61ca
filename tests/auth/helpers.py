"""Test helpers shared by the sign-in, session, access and error tests."""
from __future__ import annotations

import contextvars
import re
import sqlite3
from contextlib import contextmanager

import pytest
from flask.testing import FlaskClient


class IsolatedClient(FlaskClient):
    """A test client whose every request runs in its own app context, as under a real server.

    The `roster` fixture keeps an app context pushed for the whole test; Flask would reuse it for
    each request, so `g` (Flask-Login's cached user, Flask-WTF's cached CSRF token) would leak
    from one request into the next and hide or invent bugs.
    """

    def open(self, *args, **kwargs):
        return contextvars.Context().run(super().open, *args, **kwargs)


def isolated_client(app) -> FlaskClient:
    app.test_client_class = IsolatedClient
    return app.test_client()


def page_without_csrf(response) -> str:
    """A page's text with its CSRF token taken out: the signed token carries the second it was
    signed, so two answers a second apart differ there and only there."""
    return re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token"', response.get_data(as_text=True))


@contextmanager
def database_locked(monkeypatch):
    """Another process holds SQLite's write lock (BEGIN EXCLUSIVE on the test's database file):
    the app reads, but a write waits out the busy timeout (lowered to a moment) and fails, as in
    an outage. SQLite only: the test is skipped on PostgreSQL."""
    from portal import db as portal_db
    from portal.db import db
    if db.engine.dialect.name != "sqlite":
        pytest.skip("holds SQLite's write lock")
    monkeypatch.setattr(portal_db, "BUSY_TIMEOUT_MS", 200)
    db.session.remove()
    db.engine.dispose()       # the pooled connections were made with the ten seconds
    holder = sqlite3.connect(db.engine.url.database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("COMMIT")
        holder.close()
