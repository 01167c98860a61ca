"""GET /healthz for a load balancer: 200 while the database and Redis answer, else 503 naming
what does not, in plain words; no session, no cookie, nothing personal or secret."""
from __future__ import annotations

from dataclasses import replace

import pytest
import redis

from portal import create_app
from portal.devserver import free_port
from tests.auth.helpers import isolated_client


def test_a_worker_that_can_serve_says_ok(app):
    client = isolated_client(app)
    answer = client.get("/healthz")
    assert (answer.status_code, answer.get_data(as_text=True), answer.mimetype) == (200, "ok\n", "text/plain")
    assert answer.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in answer.headers
    assert client.head("/healthz").status_code == 200


def test_redis_away_is_a_503_naming_redis(app, redis_client, caplog):
    app.extensions["redis"] = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    try:
        with caplog.at_level("WARNING"):
            answer = isolated_client(app).get("/healthz")
    finally:
        app.extensions["redis"] = redis_client
    assert (answer.status_code, answer.get_data(as_text=True)) == (503, "unavailable: Redis does not answer\n")
    assert "Set-Cookie" not in answer.headers
    assert "health check: Redis did not answer (ConnectionError)" in caplog.text


def test_the_database_away_is_a_503_naming_it_and_no_address(settings, caplog):
    down = create_app({"SETTINGS": replace(
        settings, database_url=f"postgresql+psycopg://portal:secret@127.0.0.1:{free_port()}/portal")})
    with caplog.at_level("WARNING"):
        answer = isolated_client(down).get("/healthz")
    body = answer.get_data(as_text=True)
    assert (answer.status_code, body) == (503, "unavailable: the database does not answer\n")
    assert "127.0.0.1" not in body
    # The log is private: it gives what the database said (found by the deployment review: it
    # gave "OperationalError" alone, where `portal` commands say why), never the password.
    assert "health check: the database did not answer (connection failed: " in caplog.text
    assert "Connection refused" in caplog.text and "secret" not in caplog.text


def test_the_databases_words_in_the_log_never_hold_its_password(settings, caplog, tmp_path):
    # A socket folder named like the password: libpq's message names the folder.
    folder = tmp_path / "Pa55wordX"
    down = create_app({"SETTINGS": replace(
        settings, database_url=f"postgresql+psycopg://portal:Pa55wordX@/portal?host={folder}")})
    with caplog.at_level("WARNING"):
        answer = isolated_client(down).get("/healthz")
    assert answer.status_code == 503
    assert f"{tmp_path}/***/.s.PGSQL.5432" in caplog.text
    assert "Pa55wordX" not in caplog.text


def test_a_database_not_at_this_versions_schema_is_a_503(settings, tmp_path):
    # Found by review: it said ok while every signed-in page said sign-in was not working (a
    # rolling deploy, or `portal db upgrade` not run yet), so the load balancer kept the worker.
    from sqlalchemy import create_engine

    from portal.migrate import upgrade
    url = f"sqlite:///{tmp_path / 'behind.sqlite3'}"
    engine = create_engine(url)
    upgrade(engine, "0021_removed_actor_index")
    engine.dispose()
    answer = isolated_client(create_app({"SETTINGS": replace(settings, database_url=url)})).get("/healthz")
    assert (answer.status_code, answer.get_data(as_text=True)) == (
        503, "unavailable: the database is not at this version's schema\n")


def test_a_cookie_sent_with_it_is_not_read_nor_kept_alive(app, client, auth, roster, redis_client):
    # Found by review: a monitor polling with a session cookie kept that session alive (each
    # check slid its idle time-out), and with Redis away got the HTML 503 page, not the words.
    from portal import sessions
    from tests.test_sessions import sid_of
    roster.person("ada.lovelace")
    assert auth.login().status_code == 302
    sid = sid_of(client)
    redis_client.expire(sessions.PREFIX + sid, 5)
    assert client.get("/healthz").status_code == 200
    assert redis_client.ttl(sessions.PREFIX + sid) <= 5
    app.extensions["redis"] = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    try:
        answer = client.get("/healthz")
    finally:
        app.extensions["redis"] = redis_client
    assert (answer.status_code, answer.get_data(as_text=True)) == (503, "unavailable: Redis does not answer\n")


def test_a_database_host_that_does_not_answer_is_a_503_not_a_hang(settings, monkeypatch):
    # Found by review: no connect timeout, so a database host that accepts the connection and
    # then says nothing (or drops packets) held every page and this check about two minutes.
    import socket
    import time

    from portal import config
    assert config._server_database_options("postgresql+psycopg://db/portal")["connect_args"][
        "connect_timeout"] == config.DATABASE_CONNECT_SECONDS
    assert "connect_timeout" not in config._server_database_options(
        "postgresql+psycopg://db/portal?connect_timeout=3")["connect_args"]   # the address's own stands
    monkeypatch.setattr(config, "DATABASE_CONNECT_SECONDS", 2)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)                  # connections complete, and nothing is ever said on them
    try:
        port = silent.getsockname()[1]
        down = create_app({"SETTINGS": replace(settings, database_url=f"postgresql+psycopg://p@127.0.0.1:{port}/p")})
        started = time.monotonic()
        answer = isolated_client(down).get("/healthz")
        assert (answer.status_code, answer.get_data(as_text=True)) == (
            503, "unavailable: the database does not answer\n")
        assert time.monotonic() - started < 30        # without the time-out it waited for ever
    finally:
        silent.close()


def test_a_server_database_gives_up_on_locks_and_silence(monkeypatch):
    # Found by the operations review: only opening a connection had a time-out. A table locked
    # by a migration running beside the old version, or a connection whose network went silent,
    # held every page until gunicorn killed the worker. The server gives up on a lock or a
    # statement, and TCP keepalives find a silent peer; a `portal` command may wait (a migration).
    from portal import config
    served = config._server_database_options("postgresql+psycopg://db/portal")["connect_args"]
    assert served["options"] == (f"-c lock_timeout={config.DATABASE_LOCK_SECONDS}s "
                                 f"-c statement_timeout={config.DATABASE_STATEMENT_SECONDS}s")
    assert config.DATABASE_LOCK_SECONDS < config.DATABASE_STATEMENT_SECONDS < 30   # gunicorn's
    assert served["keepalives"] == 1 and served["tcp_user_timeout"] <= 10_000
    command = config._server_database_options("postgresql+psycopg://db/portal", serving=False)["connect_args"]
    assert "options" not in command and command["keepalives"] == 1
    # The address's own options (a search_path) are kept, and its own limits stand.
    kept = config._server_database_options(
        "postgresql+psycopg://db/portal?options=-csearch_path%3Dd1%20-c%20lock_timeout%3D1s")["connect_args"]
    assert kept["options"] == f"-csearch_path=d1 -c lock_timeout=1s -c statement_timeout={config.DATABASE_STATEMENT_SECONDS}s"
    assert "keepalives" not in config._server_database_options(
        "postgresql+psycopg://db/portal?keepalives=0")["connect_args"]


def test_a_locked_table_is_a_503_in_seconds_not_a_hang(settings, monkeypatch):
    import time

    from sqlalchemy import create_engine, text

    from portal import config
    from tests.conftest import csrf_token
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("the lock time-out is PostgreSQL's (SQLite's writers wait their busy time-out)")
    monkeypatch.setattr(config, "DATABASE_LOCK_SECONDS", 1)
    served = create_app({"SETTINGS": settings})
    client = isolated_client(served)
    token = csrf_token(client)
    other = create_engine(settings.database_url)
    try:
        with other.connect() as conn, conn.begin():
            conn.execute(text("LOCK TABLE person IN ACCESS EXCLUSIVE MODE"))   # a migration's
            started = time.monotonic()
            answer = client.post("/login", data={"username": "ada", "password": "x" * 12,
                                                 "csrf_token": token})
            waited = time.monotonic() - started
    finally:
        other.dispose()
        with served.app_context():
            from portal.db import db
            db.engine.dispose()
    assert answer.status_code == 503 and waited < 10, (answer.status_code, waited)
    assert "Traceback" not in answer.get_data(as_text=True)


def test_a_worker_whose_pages_do_not_load_is_a_503(settings, monkeypatch, tmp_path, caplog):
    # Found by the deployment review: a portal installed without its pages said ok here while
    # every page was a 500. The sign-in page's templates are loaded once, at start.
    import shutil

    import portal
    from portal.config import ROOT
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    (tmp_path / "templates" / "auth" / "login.html").write_text("{% if %}")
    monkeypatch.setattr(portal, "page_folders", lambda: (tmp_path / "templates", ROOT / "static"))
    with caplog.at_level("ERROR"):
        broken = create_app({"SETTINGS": settings})
    assert "the portal's pages cannot be shown (auth/login.html: TemplateSyntaxError" in caplog.text
    answer = isolated_client(broken).get("/healthz")
    assert (answer.status_code, answer.get_data(as_text=True)) == (
        503, "unavailable: this worker cannot show its pages\n")


def test_saml_signing_unavailable_is_a_503_naming_no_file(settings, tmp_path, caplog):
    # Found by the deployment walkthrough: a key file that can't be read gave /healthz 200 ok
    # while /saml/metadata and every SAML sign-in answered 503.
    from portal.sso.saml.keys import generate_keys
    key_file, cert_file = tmp_path / "k.pem", tmp_path / "c.pem"
    key_file.write_text("saved over by mistake\n")
    cert_file.write_bytes(generate_keys().cert_pem)
    broken = create_app({"SETTINGS": replace(settings, saml_key_file=str(key_file), saml_cert_file=str(cert_file))})
    with caplog.at_level("ERROR"):
        answer = isolated_client(broken).get("/healthz")
    assert (answer.status_code, answer.get_data(as_text=True)) == (
        503, "unavailable: SAML sign-ins cannot be signed\n")
    assert "PORTAL_SAML_KEY_FILE" in caplog.text and "k.pem" in caplog.text


def test_a_redis_that_refuses_writes_is_a_503(app, redis_client, caplog):
    # Found by the operations review: Redis at its maxmemory under noeviction (as README asks)
    # answers PING but refuses writes, so /healthz said ok while every sign-in was a 503.
    before = redis_client.config_get("maxmemory*")
    redis_client.config_set("maxmemory-policy", "noeviction")
    redis_client.config_set("maxmemory", 1)
    try:
        with caplog.at_level("WARNING"):
            answer = isolated_client(app).get("/healthz")
    finally:
        redis_client.config_set("maxmemory", before["maxmemory"])
        redis_client.config_set("maxmemory-policy", before["maxmemory-policy"])
    assert (answer.status_code, answer.get_data(as_text=True)) == (503, "unavailable: Redis refuses writes\n")
    assert "health check: Redis refused a write (OutOfMemoryError)" in caplog.text
    assert isolated_client(app).get("/healthz").status_code == 200
    assert 0 < redis_client.ttl("portal:health") <= 10     # what a check writes goes away by itself


def test_a_redis_that_refuses_the_password_says_so(app, redis_client, caplog):
    # Found by the operations review: a wrong password in PORTAL_REDIS_URL read as "Redis does
    # not answer", of a Redis that was running. The page names no address and no password.
    port = redis_client.connection_pool.connection_kwargs["port"]
    app.extensions["redis"] = redis.Redis(host="127.0.0.1", port=port, username="nobody",
                                          password="wrong-password", socket_connect_timeout=1)
    try:
        with caplog.at_level("WARNING"):
            answer = isolated_client(app).get("/healthz")
    finally:
        app.extensions["redis"] = redis_client
    assert (answer.status_code, answer.get_data(as_text=True)) == (
        503, "unavailable: Redis refused the portal's password\n")
    assert "health check: Redis refused the password in PORTAL_REDIS_URL" in caplog.text
    assert "wrong-password" not in caplog.text


def test_a_sign_in_meeting_a_refused_password_logs_it(app, client, redis_client, caplog):
    # The 503 page stays "try again in a minute"; the log says what an operator must change.
    from tests.conftest import csrf_token
    token = csrf_token(client)
    port = redis_client.connection_pool.connection_kwargs["port"]
    app.extensions["redis"] = redis.Redis(host="127.0.0.1", port=port, username="nobody",
                                          password="wrong-password", socket_connect_timeout=1)
    try:
        with caplog.at_level("WARNING"):
            answer = client.post("/login", data={"username": "ada", "password": "x" * 12, "csrf_token": token})
    finally:
        app.extensions["redis"] = redis_client
    assert answer.status_code == 503
    assert "redis unavailable: Redis refused the password in PORTAL_REDIS_URL" in caplog.text
