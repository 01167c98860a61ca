"""Fixtures: a real redis-server, a real database (SQLite file, or PostgreSQL when
PORTAL_TEST_DATABASE_URL is set), the app, a client, a CLI runner and a sign-in helper."""
from __future__ import annotations

import os
import secrets
import uuid

import pytest
import redis
from sqlalchemy import create_engine, text

from portal import create_app
from portal.config import LOGIN_LIMIT_PER_ACCOUNT, LOGIN_LIMIT_PER_ADDRESS, Settings
from portal.db import Base
from portal.devserver import RedisProcess
from portal.migrate import upgrade


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _reuse_url_builders() -> None:
    """Werkzeug compiles two Python functions for each URL rule of each app; the suite builds an
    app per test, and that compiling was a seventh of its time. A rule's builders depend only on
    its text, its parsed parts (trace) and its defaults, and take the rule itself as an argument,
    so one compiled for an earlier app's identical rule serves. Private API: if werkzeug changes
    it, the suite simply compiles as before."""
    from werkzeug.routing.rules import Rule
    compile_builder = getattr(Rule, "_compile_builder", None)
    if compile_builder is None:
        return
    compiled: dict = {}

    def reused(self, append_unknown: bool = True):
        try:
            key = (self.rule, tuple(self._trace), tuple(sorted((self.defaults or {}).items())),
                   append_unknown)
            builder = compiled.get(key)
        except (AttributeError, TypeError):     # unhashable defaults, or no trace after all
            return compile_builder(self, append_unknown)
        if builder is None:
            builder = compiled[key] = compile_builder(self, append_unknown)
        return builder

    Rule._compile_builder = reused


_reuse_url_builders()


def pytest_collection_modifyitems(items):
    """A test marked no_database is run once, on SQLite, by CI: one that asks for the suite's
    database (through any fixture) would quietly go untested on PostgreSQL, so it is an error."""
    for item in items:
        if item.get_closest_marker("no_database") and "database_url" in item.fixturenames:
            raise pytest.UsageError(f"{item.nodeid} is marked no_database but uses the database")


@pytest.fixture(scope="session")
def playwright():
    """The one Playwright driver of the test session (two sync drivers cannot live at once)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make test does)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright):
    """Headless Chromium (Debian's), shared by the browser tests; each test gets its own context."""
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A redis-server of the tests' own, on a free port of 127.0.0.1."""
    proc = RedisProcess(tmp_path_factory.mktemp("redis")).start()
    yield proc
    proc.stop()


def _postgres_schema_url(base_url: str, schema: str) -> str:
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """A fresh database for this run, brought to the newest schema by Alembic."""
    base = os.environ.get("PORTAL_TEST_DATABASE_URL")
    if base:
        schema = f"test_{uuid.uuid4().hex[:12]}"
        admin = create_engine(base)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = _postgres_schema_url(base, schema)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'portal.sqlite3'}"
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    if base:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory, database_url, redis_server) -> Settings:
    return Settings(
        env="testing",
        instance_path=tmp_path_factory.mktemp("instance"),
        secret_key=secrets.token_urlsafe(32),
        database_url=database_url,
        redis_url=redis_server.url,
        session_idle_minutes=60,
        session_max_hours=12,
        login_limit_per_account=LOGIN_LIMIT_PER_ACCOUNT,
        login_limit_per_address=LOGIN_LIMIT_PER_ADDRESS,
        trusted_proxies=0,
        pairwise_key=secrets.token_urlsafe(32),
    )


def _empty_tables(engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
            # And the planner's statistics, which a roster import gathers (portal.db.refresh_statistics):
            # kept, the next test's plans followed this one's tables (its audit events among them).
            if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first():
                conn.exec_driver_sql("DELETE FROM sqlite_stat1")


@pytest.fixture
def settings(base_settings) -> Settings:
    """Settings for one test; override with dataclasses.replace in a test's own fixture."""
    return base_settings


@pytest.fixture
def app(settings, redis_server):
    app = create_app({"SETTINGS": settings})
    yield app
    from portal.db import db
    with app.app_context():
        db.session.remove()
        _empty_tables(db.engine)
        # Its pooled connections closed now, not when the garbage collector gets to the app: on
        # PostgreSQL the suite's apps held enough at once to meet max_connections (100), and a
        # test failed with "sorry, too many clients already".
        db.engine.dispose()
    redis.Redis.from_url(redis_server.url).flushdb()


@pytest.fixture
def production(app, settings):
    """A production app on the test database and Redis (the `app` fixture empties them after).
    Ask it over HTTPS (base_url="https://portal.example"): its cookies are Secure, and its forms
    need a Referer from the portal, as a browser sends one."""
    from dataclasses import replace
    return create_app({"SETTINGS": replace(settings, env="production")})


@pytest.fixture
def live_server(app):
    """The test app served on 127.0.0.1 by werkzeug in a thread; yields its base URL."""
    from werkzeug.serving import make_server

    from tests.serving import served
    with served(make_server("127.0.0.1", 0, app, threaded=True), "live-portal") as url:
        yield url


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db_session(app):
    from portal.db import db
    with app.app_context():
        yield db.session


@pytest.fixture
def redis_client(app):
    return app.extensions["redis"]


def csrf_token(client, path="/login") -> str:
    """Fetch a page and return the CSRF token its form carries."""
    import re
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or \
        re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


class AuthActions:
    def __init__(self, client):
        self._client = client

    def login(self, username="ada.lovelace", password="correct horse battery", **kwargs):
        token = csrf_token(self._client)
        return self._client.post("/login", data={"username": username, "password": password,
                                                 "csrf_token": token}, **kwargs)

    def logout(self):
        token = csrf_token(self._client, "/")
        return self._client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def roster(app):
    """A small roster built directly with the models: one district, two schools."""
    from tests.factories import RosterFactory
    with app.app_context():
        yield RosterFactory()
