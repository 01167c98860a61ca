"""The `portal` command as an admin runs it: one plain line on trouble, nothing half done."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from portal.devserver import free_port
from portal.models import Person

PORTAL = str(Path(sys.executable).with_name("portal"))


def run_portal(args: list[str], folder: Path, database_url: str,
               redis_url: str | None = None) -> subprocess.CompletedProcess:
    """Run the `portal` command with a Redis address nothing answers on (or `redis_url`)."""
    env = {**os.environ, "PORTAL_ENV": "development", "PORTAL_INSTANCE_PATH": str(folder / "instance"),
           "PORTAL_DATABASE_URL": database_url,
           "PORTAL_REDIS_URL": redis_url or f"redis://127.0.0.1:{free_port()}/0"}
    return subprocess.run([PORTAL, *args], env=env, input="a long enough secret\n", text=True,
                          capture_output=True, timeout=60)


@pytest.mark.parametrize("args", [
    ["apps", "list"],
    ["apps", "add-link", "Reading Room", "https://reading.example/"],
    ["users", "set-password", "ada.lovelace"],
    ["roster", "import", "{bundle}"],
])
def test_a_database_without_tables_says_to_upgrade_it(tmp_path, args):
    from portal.roster.demo import write_bundle
    write_bundle(tmp_path / "bundle", 20)
    args = [arg.format(bundle=tmp_path / "bundle") for arg in args]
    result = run_portal(args, tmp_path, f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: the database does not have this version's tables yet: run `portal db upgrade` first"]


@pytest.mark.parametrize("database_url, said", [
    ("postgresql://portal@127.0.0.1:{port}/portal", "the database could not be used (connection failed"),
    ("postgres//portal@db/portal", "PORTAL_DATABASE_URL is not a database address"),
    ("mysql://portal@127.0.0.1/portal", "must be a PostgreSQL or SQLite database, not mysql"),
    ("sqlite:////no/such/folder/portal.sqlite3", "a SQLite file in a folder that does not exist"),
])
@pytest.mark.parametrize("args", [["db", "upgrade"], ["apps", "list"]])
def test_a_database_that_cannot_be_used_is_one_line(tmp_path, database_url, said, args):
    result = run_portal(args, tmp_path, database_url.format(port=free_port()))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and said in lines[0], result.stderr


@pytest.mark.parametrize("args", [["db", "upgrade"], ["apps", "list"], ["audit", "purge", "--older-than", "400"]])
def test_the_databases_words_never_hold_its_password(tmp_path, args):
    # A socket folder named like the password: libpq's message names the folder.
    folder = tmp_path / "Pa55wordX"
    result = run_portal(args, tmp_path, f"postgresql+psycopg://portal:Pa55wordX@/portal?host={folder}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{tmp_path}/***/.s.PGSQL.5432" in result.stderr
    assert "Pa55wordX" not in result.stdout + result.stderr


def test_set_password_without_redis_changes_nothing(settings, roster, tmp_path):
    """The old sessions could not be ended, so the new password must not take effect either."""
    from portal.db import db
    ada = roster.person("ada.lovelace")
    before = ada.password_hash
    result = run_portal(["users", "set-password", "ada.lovelace"], tmp_path, settings.database_url)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: Redis cannot be reached, and a new password must end the sessions signed in with "
        "the old one: start Redis (or set PORTAL_REDIS_URL) and run this again"]
    db.session.expire_all()
    assert db.session.get(Person, ada.id).password_hash == before


@pytest.mark.parametrize("args, said", [
    (["users", "set-password", "ada.lovelace"],
     "Error: Redis refused the password in PORTAL_REDIS_URL (wrong, or none given), and a new password "
     "must end the sessions signed in with the old one: set the password Redis expects there and run "
     "this again"),
    (["sessions", "sweep"], "Error: Redis refused the password in PORTAL_REDIS_URL (wrong, or none "
                            "given): set the password Redis expects there and run this again"),
    (["badges", "unlock", "ada.lovelace"], "Error: Redis refused the password in PORTAL_REDIS_URL"),
])
def test_a_wrong_redis_password_is_named_not_an_outage(settings, roster, redis_server, tmp_path, args, said):
    # Found by the operations review: a wrong password read as "Redis cannot be reached ... start
    # Redis", and the sweep as "cannot reach Redis: AuthenticationError", of a Redis that runs.
    from urllib.parse import urlsplit
    roster.person("ada.lovelace")
    where = urlsplit(redis_server.url)
    result = run_portal(args, tmp_path, settings.database_url,
                        f"redis://nobody:wrong-password@{where.hostname}:{where.port}/0")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(said) and "wrong-password" not in line


def test_dev_on_a_port_in_use_says_so_and_starts_nothing(tmp_path):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_portal(["dev", "--port", str(port)], tmp_path, f"sqlite:///{tmp_path / 'p.sqlite3'}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: port {port} on 127.0.0.1 is in use by another program: stop it, or choose another "
        f"port (make run PORT=5050, or portal dev --port 5050)"]
    assert result.stdout == ""    # no Redis, no demo district, no demo app was started


def test_dev_refuses_production_and_starts_nothing(settings, redis_server, monkeypatch, tmp_path):
    # It loads a demo district into an empty database, with the sign-ins the README publishes.
    from dataclasses import replace

    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from portal import create_app
    from portal.cli import dev
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path / "instance"))
    production = ScriptInfo(create_app=lambda: create_app({"SETTINGS": replace(settings, env="production")}))
    result = CliRunner().invoke(dev, ["--port", str(free_port())], obj=production)
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        "Error: portal dev serves a development portal with a demo district; it does not run with "
        "PORTAL_ENV=production: serve production with gunicorn (see README.md)"]
    assert not (tmp_path / "instance").exists()


@pytest.mark.parametrize("port", ["99999", "-1", "0"])
def test_dev_on_a_port_that_cannot_be_says_so(tmp_path, port):
    result = run_portal(["dev", "--port", port], tmp_path, f"sqlite:///{tmp_path / 'p.sqlite3'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "1<=x<=65535" in result.stderr


def test_portal_commands_beside_make_run_use_its_redis_and_a_second_one_is_refused(tmp_path):
    # `portal dev` (make run) starts a Redis of its own on a free port: a `portal` command in
    # another terminal must act on the running portal, not on whatever listens on 6379.
    import fcntl

    from portal.config import DEV_REDIS_FILE, load_settings
    from portal.devserver import free_port
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / DEV_REDIS_FILE).write_text("redis://127.0.0.1:45678/0\n")
    env = {"PORTAL_INSTANCE_PATH": str(instance)}
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("PORTAL_")}
    try:
        os.environ.update(env)
        assert load_settings().redis_url == "redis://127.0.0.1:6379/0"   # nothing holds the lock
        with open(instance / "dev.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            assert load_settings().redis_url == "redis://127.0.0.1:45678/0"
            second = subprocess.run([os.path.join(os.path.dirname(sys.executable), "portal"), "dev",
                                     "--port", str(free_port())], env={**os.environ, "PATH": os.environ.get("PATH", "")},
                                    capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and "is serving" in second.stderr and "Traceback" not in second.stderr
    finally:
        for k in env:
            os.environ.pop(k, None)
        os.environ.update(saved)


def _runner_on(settings, url: str):
    """The CLI runner of an app on another database than the suite's."""
    from dataclasses import replace

    from portal import create_app
    return create_app({"SETTINGS": replace(settings, database_url=url)}).test_cli_runner()


def _schema(engine) -> list:
    from sqlalchemy import text
    with engine.connect() as conn:
        return conn.execute(text("SELECT type, name, sql FROM sqlite_master ORDER BY name")).all()


def test_upgrading_says_what_it_did(settings, tmp_path):
    # On an empty database it said "database is up to date" though it had just made every table.
    from sqlalchemy import create_engine

    from portal.migrate import upgrade
    from tests.test_migrations import _head
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    runner = _runner_on(settings, url)
    created = runner.invoke(args=["db", "upgrade"])
    assert created.exit_code == 0, created.output
    assert created.output == f"created the database's tables (revision {_head()})\n"
    again = runner.invoke(args=["db", "upgrade"])
    assert again.exit_code == 0, again.output
    assert again.output == f"the database was already up to date (revision {_head()})\n"
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0020_subject_seed")
    engine.dispose()
    older = _runner_on(settings, f"sqlite:///{tmp_path / 'old.sqlite3'}").invoke(args=["db", "upgrade"])
    assert older.exit_code == 0, older.output
    assert older.output == f"upgraded the database from revision 0020_subject_seed to {_head()}\n"


def test_upgrading_a_database_a_newer_portal_migrated_is_one_line_and_changes_nothing(settings, tmp_path):
    # Before, Alembic's "Can't locate revision" came out as a hundred-line traceback.
    from sqlalchemy import create_engine, text

    from portal.migrate import upgrade
    url = f"sqlite:///{tmp_path / 'newer.sqlite3'}"
    engine = create_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_future_change'"))
    before = _schema(engine)
    result = _runner_on(settings, url).invoke(args=["db", "upgrade"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        "Error: the database was migrated by a newer version of the portal (revision "
        "0099_future_change), which this version cannot upgrade or use: run the newer version; "
        "nothing changed"]
    assert _schema(engine) == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0099_future_change"
    engine.dispose()


def test_upgrading_a_database_another_process_is_writing_to_says_so_and_changes_nothing(
        settings, tmp_path, monkeypatch):
    # Found by review: the lock taken at the start of the upgrade (BEGIN IMMEDIATE) failed outside
    # the one-line handling, and the command then said to run `portal db upgrade`.
    import sqlite3

    from sqlalchemy import create_engine, text

    from portal import db as portal_db
    from portal.migrate import downgrade, upgrade
    monkeypatch.setattr(portal_db, "BUSY_TIMEOUT_MS", 200)   # wait a moment, not ten seconds
    path = tmp_path / "busy.sqlite3"
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine)
    downgrade(engine, "0015_composed_usernames")
    engine.dispose()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")        # another process is writing
    try:
        runner = _runner_on(settings, f"sqlite:///{path}")
        result = runner.invoke(args=["db", "upgrade"])
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        "Error: the database is in use by another process (database is locked); nothing changed: "
        "run `portal db upgrade` again when it is done"]
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0015_composed_usernames"
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0   # once the other is done
    engine.dispose()


def test_the_help_offers_only_what_works_here():
    # Found by review: Flask's --env-file (it needs python-dotenv, not installed), --app and
    # --debug, and its `run` and `routes` commands were offered beside the portal's own.
    from click.testing import CliRunner

    from portal.cli import main
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for gone in ("--env-file", "--app", "--debug", "\n  run ", "\n  routes "):
        assert gone not in result.output
    for kept in ("\n  dev ", "\n  shell ", "\n  db ", "\n  apps "):
        assert kept in result.output
    assert CliRunner().invoke(main, ["-e", "portal.env", "db", "upgrade"]).exit_code == 2


@pytest.mark.parametrize("args", [[b"users", b"hold", b"ren\xe9e"], [b"apps", b"grant", b"library", b"--school", b"sch-\xe9"],
                                  [b"kiosk", b"pair", b"sch-\xe9"]])
def test_an_argument_that_is_not_utf8_is_one_line_and_changes_nothing(tmp_path, args):
    # Found by review: a Latin-1 "é" from a script reading a Latin-1 export printed a traceback.
    env = {**os.environ, "PORTAL_ENV": "development", "PORTAL_INSTANCE_PATH": str(tmp_path / "instance"),
           "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite3'}",
           "PORTAL_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = subprocess.run([PORTAL.encode(), *args], env=env, capture_output=True, timeout=60)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2 and "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "is not UTF-8 text" in lines[0] and "nothing changed" in lines[0], stderr
    assert not (tmp_path / "p.sqlite3").exists()


def test_a_file_whose_name_is_not_utf8_is_read_all_the_same(tmp_path):
    # Found by review: the check above refused a Latin-1 folder name, which Linux allows and
    # Python opens; such a name is passed on.
    from portal.roster.demo import write_bundle
    folder = os.fsencode(tmp_path) + b"/\xe9l\xe8ves"
    write_bundle(Path(os.fsdecode(folder)), 20)
    env = {**os.environ, "PORTAL_ENV": "development", "PORTAL_INSTANCE_PATH": str(tmp_path / "instance"),
           "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite3'}",
           "PORTAL_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    subprocess.run([PORTAL, "db", "upgrade"], env=env, capture_output=True, timeout=60, check=True)
    result = subprocess.run([PORTAL.encode(), b"roster", b"import", folder], env=env, capture_output=True,
                            timeout=60)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 0 and "Traceback" not in stderr, stderr


def test_dev_gives_the_demo_student_a_new_badge_once_theirs_stopped_working(redis_server, monkeypatch, tmp_path):
    # The demo badge ended on the next July 31 (PORTAL_BADGE_EXPIRES and PORTAL_TIMEZONE aside),
    # and `make run` wrote one only into an empty database: from then on the README's badge failed.
    import hashlib
    import logging
    import signal
    from datetime import datetime, timedelta, timezone

    import werkzeug.serving
    from click.testing import CliRunner
    from flask.cli import ScriptInfo
    from sqlalchemy import create_engine, select, update
    from sqlalchemy.orm import Session

    import portal.cli
    from portal.models import Badge
    database = f"sqlite:///{tmp_path / 'dev.sqlite3'}"
    for name, value in {"ENV": "development", "INSTANCE_PATH": str(tmp_path / "instance"),
                        "DATABASE_URL": database, "REDIS_URL": redis_server.url,
                        "BADGE_EXPIRES": "30d", "TIMEZONE": "America/Chicago"}.items():
        monkeypatch.setenv(f"PORTAL_{name}", value)
    monkeypatch.setattr(werkzeug.serving, "run_simple", lambda *a, **k: None)   # serves nothing
    monkeypatch.setattr(portal.cli, "_start_demo_app", lambda app, port: None)
    monkeypatch.setattr(logging.getLogger("werkzeug"), "level", logging.getLogger("werkzeug").level)
    monkeypatch.setattr(signal, "signal", lambda *a: None)      # `portal dev` takes SIGTERM
    badge_file = tmp_path / "instance" / "demo-badge.pdf"
    engine = create_engine(database)

    def dev() -> str:
        result = CliRunner().invoke(portal.cli.dev, ["--port", str(free_port()), "--students", "20"],
                                    obj=ScriptInfo(create_app=portal.cli._create_app))
        assert result.exit_code == 0, result.output
        return result.output

    def cards() -> list[Badge]:
        with Session(engine) as db:
            return list(db.scalars(select(Badge).order_by(Badge.id)))

    def written() -> str:
        return hashlib.sha256(badge_file.read_bytes()).hexdigest()

    assert "a badge for demo.student" in dev()
    [card] = cards()
    assert card.expires_at == card.issued_at + timedelta(days=30)
    first = written()
    assert "no longer worked" not in dev() and written() == first and len(cards()) == 1
    with Session(engine) as db:                                  # the school year has ended
        db.execute(update(Badge).values(expires_at=datetime.now(timezone.utc) - timedelta(minutes=1)))
        db.commit()
    assert "as the one there no longer worked" in dev()
    old, new = cards()
    assert old.revoked_at is not None and new.usable_at(datetime.now(timezone.utc))
    assert written() != first
    assert "no longer worked" not in dev() and len(cards()) == 2
    engine.dispose()
