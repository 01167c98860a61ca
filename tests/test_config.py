"""Settings: secrets made once, shared by every worker; production refuses to guess."""
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

from portal.config import ConfigError, load_settings, private_folder, secret_file_value


def test_secret_is_made_once_with_private_mode(tmp_path):
    path = tmp_path / "secret_key"
    first = secret_file_value(path)
    assert len(first) >= 48
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert secret_file_value(path) == first


def test_workers_starting_together_agree_on_one_secret(tmp_path):
    path = tmp_path / "secret_key"
    with ThreadPoolExecutor(8) as pool:
        values = set(pool.map(lambda _: secret_file_value(path), range(32)))
    assert len(values) == 1 and "" not in values
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]


def test_a_secret_file_that_is_empty_or_unreadable_is_refused_in_words(monkeypatch, tmp_path):
    """A secret of no length would sign cookies and pairwise ids with nothing: start-up stops
    and says what to do, which differs between the two files."""
    for name in list(os.environ):
        if name.startswith("PORTAL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    (tmp_path / "secret_key").write_text("\n")
    with pytest.raises(ConfigError, match="secret_key holds no usable secret .*everyone is signed out"):
        load_settings()
    (tmp_path / "secret_key").unlink()
    (tmp_path / "pairwise_key").mkdir()
    with pytest.raises(ConfigError, match="pairwise_key .Is a directory.* restore it from a backup"):
        load_settings()


@pytest.mark.parametrize("name", ["SECRET_KEY", "PAIRWISE_KEY"])
def test_a_short_secret_in_the_environment_is_refused(monkeypatch, tmp_path, name):
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv(f"PORTAL_{name}", "password123")
    with pytest.raises(ConfigError, match=f"PORTAL_{name} is too short .11 characters; at least 32"):
        load_settings()


def test_addresses_are_checked_at_start(monkeypatch, tmp_path):
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PORTAL_DATABASE_URL", "postgresql://portal:p%40ss@db.example.org/portal")
    settings = load_settings()      # the usual spelling, through the driver the portal ships
    assert settings.database_url == "postgresql+psycopg://portal:p%40ss@db.example.org/portal"
    monkeypatch.setenv("PORTAL_DATABASE_URL", f"sqlite+pysqlite:///{tmp_path / 'portal.sqlite3'}")
    assert load_settings().database_url.startswith("sqlite+pysqlite:///")
    monkeypatch.setenv("PORTAL_DATABASE_URL", "postgresql+asyncpg://portal@db.example.org/portal")
    with pytest.raises(ConfigError, match="asks for the asyncpg driver: write postgresql://"):
        load_settings()
    monkeypatch.delenv("PORTAL_DATABASE_URL")
    for entity_id in ("portal", "https://portal.example.org/saml metadata", "https://x/" + "a" * 1024):
        monkeypatch.setenv("PORTAL_SAML_ENTITY_ID", entity_id)
        with pytest.raises(ConfigError, match="PORTAL_SAML_ENTITY_ID must be a URI"):
            load_settings()
    monkeypatch.delenv("PORTAL_SAML_ENTITY_ID")
    for url in ("redis:", "http://127.0.0.1:6379/0", "redis://127.0.0.1:99999/0",
                "redis://127.0.0.1:6379/abc"):
        monkeypatch.setenv("PORTAL_REDIS_URL", url)
        with pytest.raises(ConfigError, match="PORTAL_REDIS_URL is not a Redis address"):
            load_settings()
    # Options are read at start, not at the first request (a 500 on every page).
    for url in ("redis://127.0.0.1:6379/0?socket_timeout=abc",
                "rediss://127.0.0.1:6379/0?ssl_cert_reqs=bogus"):
        monkeypatch.setenv("PORTAL_REDIS_URL", url)
        with pytest.raises(ConfigError, match="PORTAL_REDIS_URL has an option Redis cannot use"):
            load_settings()
    monkeypatch.delenv("PORTAL_REDIS_URL")
    monkeypatch.setenv("PORTAL_DATABASE_URL", f"sqlite:///{tmp_path / 'portal.sqlite3'}?timeout=abc")
    with pytest.raises(ConfigError, match="PORTAL_DATABASE_URL has an option the database driver"):
        load_settings()


def test_an_instance_path_that_cannot_be_a_folder_is_refused(monkeypatch, tmp_path):
    a_file = tmp_path / "instance"
    a_file.write_text("")
    for path, said in [(a_file, "is a file, not a folder"),
                       (a_file / "sub", "can't be made a folder .Not a directory.")]:
        monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(path))
        with pytest.raises(ConfigError, match=f"PORTAL_INSTANCE_PATH .* {said}"):
            load_settings()


def test_production_without_secret_key_refuses_to_start(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("PORTAL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="PORTAL_SECRET_KEY"):
        load_settings()
    assert not (tmp_path / "secret_key").exists()


def test_production_names_every_missing_setting_at_once(monkeypatch, tmp_path):
    """One run says all that is missing: one name per run took eight starts to find them all.
    Production picks no database either (a SQLite file in instance/ is each machine's own)."""
    for name in list(os.environ):
        if name.startswith("PORTAL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PORTAL_PAIRWISE_KEY", "x" * 40)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    lines = str(refused.value).splitlines()
    named = [line.split(":")[0].strip() for line in lines[1:]]
    assert named == ["PORTAL_SECRET_KEY", "PORTAL_DATABASE_URL", "PORTAL_REDIS_URL",
                     "PORTAL_SAML_KEY_FILE", "PORTAL_SAML_CERT_FILE", "PORTAL_OIDC_KEYS_DIR",
                     "PORTAL_OIDC_ISSUER"]
    assert "README.md" in lines[0]
    assert not (tmp_path / "secret_key").exists()


def test_a_server_in_development_mode_says_so_in_the_log(settings, caplog):
    """gunicorn with PORTAL_ENV unset served with made-up secrets and a SQLite file, silently.
    A `portal` command (portal dev among them) is not a server people reach: it says nothing."""
    from dataclasses import replace

    from portal import create_app
    create_app({"SETTINGS": replace(settings, env="development")})
    [warning] = [r for r in caplog.records if "development mode" in r.getMessage()]
    assert warning.levelname == "WARNING" and "PORTAL_ENV=production" in warning.getMessage()
    caplog.clear()
    create_app({"SETTINGS": replace(settings, env="development")}, command_line=True)
    create_app({"SETTINGS": settings})        # the tests' own
    create_app({"SETTINGS": replace(settings, env="production")})
    assert "development mode" not in caplog.text


def test_bad_number_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PORTAL_SESSION_IDLE_MINUTES", "ten")
    with pytest.raises(ConfigError, match="PORTAL_SESSION_IDLE_MINUTES"):
        load_settings()


@pytest.mark.parametrize("name, value, words", [
    ("SESSION_IDLE_MINUTES", "0", "between 1 and"),
    ("SESSION_IDLE_MINUTES", "-5", "between 1 and"),
    ("SESSION_MAX_HOURS", "0", "between 1 and"),
    ("KIOSK_IDLE_MINUTES", "0", "between 1 and"),
    ("SESSION_IDLE_MINUTES", "1000000000000000", "between 1 and 10080"),
    ("SESSION_MAX_HOURS", "1000000000000000", "between 1 and 720"),
    ("KIOSK_IDLE_MINUTES", "100000", "between 1 and 1440"),
    ("KIOSK_PAGE_IDLE_SECONDS", "10", "between 30 and 3600"),
    ("KIOSK_PAGE_IDLE_SECONDS", "two minutes", "a whole number"),
    ("OIDC_CODE_SECONDS", "120", "between 1 and 60"),
    ("LOGIN_LIMIT_PER_ACCOUNT", "ten", "10 per 15 minutes"),
    ("LOGIN_LIMIT_PER_ADDRESS", "0 per minute", "10 per 15 minutes"),
    ("BADGE_FACTOR_LIMIT", "5 every day", "10 per 15 minutes"),
    ("TIMEZONE", "Mars/Olympus_Mons", "a time zone name such as America/Chicago"),
    ("TIMEZONE", "../../etc/passwd", "a time zone name such as America/Chicago"),
])
def test_settings_that_would_fail_every_request_stop_start_up(monkeypatch, tmp_path, name, value, words):
    """A zero idle time-out made every request a 503 and an unreadable limit every sign-in a
    500; now start-up says which setting is wrong."""
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv(f"PORTAL_{name}", value)
    with pytest.raises(ConfigError, match=f"PORTAL_{name} must .*{words}"):
        load_settings()


def test_instance_folder_is_made_private(tmp_path):
    # It holds the database file, the secrets and Redis's data: all about students.
    instance = tmp_path / "a" / "instance"
    secret_file_value(instance / "secret_key")
    for folder in (tmp_path / "a", instance):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE((instance / "secret_key").stat().st_mode) == 0o600
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    private_folder(shared)  # an existing folder keeps the mode its owner gave it
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755


def test_a_failed_statement_names_no_values(app):
    # Its error reaches the log: the values can be password, PIN or picture hashes.
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from portal.db import db
    with app.app_context():
        with pytest.raises(DBAPIError) as caught:
            db.session.execute(text("INSERT INTO no_such_table VALUES (:x)"), {"x": "hash-of-a-pin"})
        db.session.rollback()
    assert "hash-of-a-pin" not in str(caught.value)
    assert "no_such_table" in str(caught.value)


def test_a_secret_file_not_written_for_a_full_disk_leaves_nothing_behind(monkeypatch, tmp_path):
    # Found by the operations review: the write was outside the try that removes the temporary
    # file, so a full disk left an empty .secret_key.<hex> beside the folder's secrets.
    import errno

    from portal import config

    class FullDisk:
        def __init__(self, fd, *args, **kwargs):
            self.fd = fd

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            os.close(self.fd)

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(config.os, "fdopen", FullDisk)
    with pytest.raises(ConfigError, match="can't make the secret .*secret_key .No space left on device."):
        secret_file_value(tmp_path / "secret_key")
    assert list(tmp_path.iterdir()) == []
