"""Every setting of the portal, read from PORTAL_* environment variables with safe defaults."""
from __future__ import annotations

import functools
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from portal.cookies import prefixed_name
from portal.files import write_whole

ROOT = Path(__file__).resolve().parent.parent
# Run from a checkout (make run, an editable install, gunicorn in the repository), templates/,
# static/ and instance/ sit beside portal/. Installed from a wheel, ROOT is site-packages: the
# pages are inside the package, and the instance folder is where Flask puts an installed app's,
# var/portal-instance under the virtualenv (sys.prefix), never site-packages.
FROM_CHECKOUT = (ROOT / "pyproject.toml").is_file()
DEFAULT_INSTANCE = ROOT / "instance" if FROM_CHECKOUT else Path(sys.prefix) / "var" / "portal-instance"

# Rate limits live together so they can be read and tuned in one place. A whole school
# usually shares one public address, so the per-address limit is generous; the
# per-account limit is strict.
LOGIN_LIMIT_PER_ACCOUNT = "10 per 15 minutes"
LOGIN_LIMIT_PER_ADDRESS = "600 per 5 minutes"
# Badges: every scan counts against its device and its badge; browser-scanner scans count per
# address (a school shares one); second-factor failures per badge lock to teacher help.
BADGE_LIMIT_PER_DEVICE = "60 per minute"
BADGE_LIMIT_PER_BADGE = "10 per 5 minutes"
BADGE_LIMIT_PER_ADDRESS = "300 per 5 minutes"
BADGE_FACTOR_LIMIT = "5 per 15 minutes"
KIOSK_ENROLL_LIMIT_PER_ADDRESS = "20 per 10 minutes"


MIN_SECRET_CHARS = 32      # a generated one has 64 (48 random bytes)


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and what to do."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(f"PORTAL_{name}")
    return value if value not in (None, "") else default


def _int(name: str, default: int, low: int | None = None, high: int | None = None) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"PORTAL_{name} must be a whole number, not {raw!r}") from None
    if low is not None and value < low or high is not None and value > high:
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"PORTAL_{name} must be {bounds}, not {value}")
    return value


def _limit(name: str, default: str) -> str:
    """A rate limit such as "10 per 15 minutes", checked now rather than at the first sign-in."""
    from limits import parse
    value = _env(name, default)
    try:
        item = parse(value)
    except ValueError:
        item = None
    if item is None or item.amount < 1:
        raise ConfigError(f"PORTAL_{name} must read like \"10 per 15 minutes\", not {value!r}")
    return value


def _bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    env: str
    instance_path: Path
    secret_key: str
    database_url: str
    redis_url: str
    session_idle_minutes: int
    session_max_hours: int
    login_limit_per_account: str
    login_limit_per_address: str
    trusted_proxies: int
    pairwise_key: str = ""
    badge_expires: str = "07-31"  # MM-DD: the day after which badges stop working; or "<N>d"
    kiosk_idle_minutes: int = 15
    # A badge sign-in's tiles page left untouched this long asks "Are you still here?" (then 20 s).
    kiosk_page_idle_seconds: int = 120
    badge_limit_per_device: str = BADGE_LIMIT_PER_DEVICE
    badge_limit_per_badge: str = BADGE_LIMIT_PER_BADGE
    badge_limit_per_address: str = BADGE_LIMIT_PER_ADDRESS
    badge_factor_limit: str = BADGE_FACTOR_LIMIT
    kiosk_enroll_limit_per_address: str = KIOSK_ENROLL_LIMIT_PER_ADDRESS
    saml_key_file: str = ""
    saml_cert_file: str = ""
    saml_next_cert_file: str = ""
    saml_entity_id: str = ""
    oidc_issuer: str = ""  # e.g. https://portal.district.org; empty: the URL the request came to
    oidc_keys_dir: str = ""  # empty: instance/oidc_keys
    oidc_code_seconds: int = 60
    oidc_token_seconds: int = 600
    timezone: str = "UTC"   # the district's (IANA name): the school year's last day ends at its midnight

    @property
    def zone(self):
        """The district's time zone (PORTAL_TIMEZONE) as a tzinfo."""
        return _zone(self.timezone)

    @property
    def production(self) -> bool:
        return self.env == "production"


def private_folder(path: Path) -> Path:
    """Create `path` and any missing parents readable by their owner only (0700): instance/ holds
    the database file, the secrets and Redis's data, all about students. A folder that exists
    keeps the mode its owner gave it."""
    target = Path(path)
    missing, folder = [], target
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    return target


def _long_enough(name: str, value: str) -> None:
    if len(value) < MIN_SECRET_CHARS:
        raise ConfigError(f"PORTAL_{name} is too short ({len(value)} characters; at least "
                          f"{MIN_SECRET_CHARS}): set it to a long random value, e.g. what "
                          f"`python3 -c 'import secrets; print(secrets.token_urlsafe(48))'` prints")


def _database_url(url: str) -> str:
    """The database URL, checked: PostgreSQL (through psycopg, the driver the portal ships) or a
    SQLite file in a folder that exists."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError
    example = "e.g. postgresql://portal@db.example.org/portal or sqlite:////srv/portal/portal.sqlite3"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(f"PORTAL_DATABASE_URL is not a database address: {example}") from None
    if parsed.drivername in ("postgresql", "postgresql+psycopg", "postgres"):
        return _engine_accepts(parsed.set(drivername="postgresql+psycopg").render_as_string(
            hide_password=False))
    if parsed.get_backend_name() == "postgresql":
        raise ConfigError(f"PORTAL_DATABASE_URL asks for the {parsed.get_driver_name()} driver: write "
                          f"postgresql:// (the portal talks to PostgreSQL through psycopg)")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not Path(parsed.database).parent.is_dir():
            raise ConfigError(f"PORTAL_DATABASE_URL names a SQLite file in a folder that does not "
                              f"exist: {Path(parsed.database).parent}")
        return _engine_accepts(url)
    raise ConfigError(f"PORTAL_DATABASE_URL must be a PostgreSQL or SQLite database, not "
                      f"{parsed.drivername}: {example}")


def _engine_accepts(url: str) -> str:
    """The URL, if an engine can be built from it (no connection is made): its options
    (?timeout=abc) are read here, not at the first request."""
    from sqlalchemy import create_engine
    try:
        create_engine(url).dispose()
    except Exception as e:   # the drivers raise what they like: ValueError, TypeError, ...
        raise ConfigError(f"PORTAL_DATABASE_URL has an option the database driver cannot use: "
                          f"{str(e).splitlines()[0][:200] if str(e) else type(e).__name__}") from None
    return url


def _loopback(host: str) -> bool:
    import ipaddress
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _oidc_issuer(value: str, *, production: bool) -> str:
    """The portal's public address, checked: https (http on this machine, outside production),
    a host name and nothing after it."""
    issuer = value.rstrip("/")
    if not value:
        return issuer
    try:
        parts = urlsplit(issuer)
    except ValueError:      # https://[portal
        parts = urlsplit("")
    host = parts.hostname
    if parts.query or parts.fragment or not (
            parts.scheme == "https" and host or parts.scheme == "http" and host and _loopback(host)):
        raise ConfigError("PORTAL_OIDC_ISSUER must be the portal's https:// address, e.g. "
                          "https://portal.example.org")
    if parts.path:
        # The endpoints and the SAML entity ID are made from the host alone: an issuer with a
        # path named addresses that do not exist, and apps refused its tokens.
        raise ConfigError(f"PORTAL_OIDC_ISSUER has a path ({parts.path[:60]}): serve the portal on "
                          f"a host name of its own, e.g. https://portal.example.org")
    if production and _loopback(host):
        raise ConfigError(f"PORTAL_OIDC_ISSUER names this machine ({host}): apps and browsers "
                          f"elsewhere cannot reach it; set the portal's public https:// address")
    return issuer


def _saml_entity_id(value: str) -> str:
    """An entity ID is an absolute URI of at most 1024 characters (SAML core, 8.3.6)."""
    if value and (len(value) > 1024 or not urlsplit(value).scheme or any(c.isspace() for c in value)):
        raise ConfigError("PORTAL_SAML_ENTITY_ID must be a URI of at most 1024 characters, e.g. "
                          "https://portal.example.org/saml/metadata")
    return value


DEV_REDIS_FILE = "dev-redis-url"   # written by `portal dev` while it runs, removed when it stops


def _dev_redis_url(instance: Path) -> str | None:
    """The Redis of the `portal dev` serving this instance folder now, if one is (it holds the
    folder's dev.lock: a file left by one that was killed outright names nothing)."""
    import fcntl
    if not (instance / DEV_REDIS_FILE).is_file():
        return None
    try:
        with open(instance / "dev.lock", "r") as lock:   # no write access needed to test it
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                pass            # held: portal dev is running
            else:
                return None     # not held: nothing is running
        url = (instance / DEV_REDIS_FILE).read_text().strip()
    except OSError:
        return None
    return url or None


def _redis_url(url: str) -> str:
    """The Redis URL, checked before the first request needs it."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        usable = False
    else:
        usable = parts.scheme == "unix" or (parts.scheme in ("redis", "rediss") and bool(parts.hostname))
    if usable and parts.scheme != "unix":
        usable = parts.path in ("", "/") or parts.path[1:].isascii() and parts.path[1:].isdigit()
    if not usable:
        raise ConfigError("PORTAL_REDIS_URL is not a Redis address: e.g. redis://127.0.0.1:6379/0")
    import redis
    try:   # its options (?socket_timeout=abc, ?ssl_cert_reqs=...) are read here, not at a request
        pool = redis.ConnectionPool.from_url(url)
        pool.make_connection()
        pool.disconnect()
    except (ValueError, TypeError, redis.RedisError) as e:
        raise ConfigError(f"PORTAL_REDIS_URL has an option Redis cannot use: {str(e)[:200]}") from None
    return url


def _make_secret_file(path: Path) -> None:
    private_folder(path.parent)
    if not path.exists():
        # Several workers may start at once: the first one's secret is linked into place, and the
        # others keep it (a full disk leaves no temporary file).
        write_whole(path, secrets.token_urlsafe(48).encode(), 0o600, first_wins=True)


def secret_file_value(path: Path, if_lost: str = "delete it and a new one is made") -> str:
    """Read the secret at `path`, creating it (mode 0600) the first time.

    Several workers may start at once: the secret is written whole to a private temporary file
    and linked into place, so a reader never sees a half-written file and all agree on one value.
    A file that cannot be read, or holds no usable secret, is a ConfigError ending in `if_lost`.
    """
    try:
        _make_secret_file(path)
    except OSError as e:
        raise ConfigError(f"can't make the secret {path} ({e.strerror}): the portal's user must be "
                          f"able to write in {path.parent}") from None
    try:
        value = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"can't read the secret in {path} ({getattr(e, 'strerror', None) or e}): "
                          f"make it a file the portal's user can read (mode 0600), or {if_lost}") from None
    if len(value) < MIN_SECRET_CHARS:
        raise ConfigError(f"{path} holds no usable secret (empty or under {MIN_SECRET_CHARS} "
                          f"characters): {if_lost}")
    return value


# What production will not make up, each with what to set it to. Development generates the
# secrets and keys into instance/, uses a SQLite file there and the Redis on this machine.
PRODUCTION_REQUIRED = {
    "SECRET_KEY": "a long random value shared by every worker",
    "PAIRWISE_KEY": "a long random value, set once and never changed (it keeps every app's "
                    "student ids stable)",
    "DATABASE_URL": "the district's database, e.g. postgresql://portal@db.example.org/portal",
    "REDIS_URL": "the district's Redis, e.g. redis://redis.example.org:6379/0",
    "SAML_KEY_FILE": "the SAML signing key (a PEM file every worker can read)",
    "SAML_CERT_FILE": "the SAML certificate of that key (a PEM file)",
    "OIDC_KEYS_DIR": "a folder all workers share for the ID token signing keys "
                     "(`portal keys rotate` writes there)",
    "OIDC_ISSUER": "the portal's public address, e.g. https://portal.example.org",
}


def _refuse_incomplete_production() -> None:
    """Name every missing setting at once: one per start would take eight tries to find them."""
    missing = [name for name in PRODUCTION_REQUIRED if _env(name) is None]
    if missing:
        lines = "\n".join(f"  PORTAL_{name}: {PRODUCTION_REQUIRED[name]}" for name in missing)
        raise ConfigError(f"PORTAL_ENV is production, and these settings are not set (production "
                          f"makes none of them up; see README.md, \"In production\"):\n{lines}")


def load_settings() -> Settings:
    """Read the settings from the environment; refuse to start production without secrets."""
    env = _env("ENV", "development")
    if env not in ("development", "production", "testing"):
        raise ConfigError("PORTAL_ENV must be development, production or testing")
    if env == "production":
        _refuse_incomplete_production()
    instance = Path(_env("INSTANCE_PATH", str(DEFAULT_INSTANCE))).resolve()
    try:    # first: the secrets and the default SQLite file live here
        private_folder(instance)
    except OSError as e:
        raise ConfigError(f"PORTAL_INSTANCE_PATH {instance} can't be made a folder ({e.strerror}): "
                          f"point it at a folder the portal's user may write in") from None
    if not instance.is_dir():
        raise ConfigError(f"PORTAL_INSTANCE_PATH {instance} is a file, not a folder")

    secret = _env("SECRET_KEY")
    if secret is None:
        secret = secret_file_value(instance / "secret_key",
                                   "delete it and a new one is made (everyone is signed out)")
    else:
        _long_enough("SECRET_KEY", secret)

    redis_url = _env("REDIS_URL")
    if redis_url is None:
        # While `make run` (portal dev) serves this instance folder, its own Redis: a `portal`
        # command in another terminal must act on the running portal, not on another Redis.
        redis_url = _dev_redis_url(instance) or "redis://127.0.0.1:6379/0"

    pairwise = _env("PAIRWISE_KEY")
    if pairwise is None:
        pairwise = secret_file_value(instance / "pairwise_key",
                                     "restore it from a backup: a new one gives every student new ids "
                                     "in every app")
    else:
        _long_enough("PAIRWISE_KEY", pairwise)

    saml_key_file, saml_cert_file = _env("SAML_KEY_FILE", ""), _env("SAML_CERT_FILE", "")
    oidc_keys_dir = _env("OIDC_KEYS_DIR", "")
    oidc_code_seconds = _int("OIDC_CODE_SECONDS", 60, 1, 60)
    oidc_issuer = _oidc_issuer(_env("OIDC_ISSUER", "") or "", production=env == "production")
    oidc_token_seconds = _int("OIDC_TOKEN_SECONDS", 600, 60, 3600)

    return Settings(
        env=env,
        instance_path=instance,
        secret_key=secret,
        database_url=_database_url(_env("DATABASE_URL", f"sqlite:///{instance / 'portal.sqlite3'}")),
        redis_url=_redis_url(redis_url),
        session_idle_minutes=_int("SESSION_IDLE_MINUTES", 60, 1, 7 * 24 * 60),
        session_max_hours=_int("SESSION_MAX_HOURS", 12, 1, 30 * 24),
        login_limit_per_account=_limit("LOGIN_LIMIT_PER_ACCOUNT", LOGIN_LIMIT_PER_ACCOUNT),
        login_limit_per_address=_limit("LOGIN_LIMIT_PER_ADDRESS", LOGIN_LIMIT_PER_ADDRESS),
        trusted_proxies=_int("TRUSTED_PROXIES", 0, 0, 10),
        pairwise_key=pairwise,
        saml_key_file=saml_key_file,
        saml_cert_file=saml_cert_file,
        saml_next_cert_file=_env("SAML_NEXT_CERT_FILE", ""),
        saml_entity_id=_saml_entity_id(_env("SAML_ENTITY_ID", "")),
        oidc_issuer=oidc_issuer,
        oidc_keys_dir=oidc_keys_dir,
        oidc_code_seconds=oidc_code_seconds,
        oidc_token_seconds=oidc_token_seconds,
        badge_expires=_badge_expires(_env("BADGE_EXPIRES", "07-31")),
        kiosk_idle_minutes=_int("KIOSK_IDLE_MINUTES", 15, 1, 24 * 60),
        kiosk_page_idle_seconds=_int("KIOSK_PAGE_IDLE_SECONDS", 120, 30, 3600),
        badge_limit_per_device=_limit("BADGE_LIMIT_PER_DEVICE", BADGE_LIMIT_PER_DEVICE),
        badge_limit_per_badge=_limit("BADGE_LIMIT_PER_BADGE", BADGE_LIMIT_PER_BADGE),
        badge_limit_per_address=_limit("BADGE_LIMIT_PER_ADDRESS", BADGE_LIMIT_PER_ADDRESS),
        badge_factor_limit=_limit("BADGE_FACTOR_LIMIT", BADGE_FACTOR_LIMIT),
        kiosk_enroll_limit_per_address=_limit("KIOSK_ENROLL_LIMIT_PER_ADDRESS",
                                              KIOSK_ENROLL_LIMIT_PER_ADDRESS),
        timezone=_timezone(_env("TIMEZONE", "UTC")),
    )


@functools.lru_cache(maxsize=8)
def _zone(name: str):
    from zoneinfo import ZoneInfo
    return ZoneInfo(name)


def _timezone(value: str) -> str:
    """An IANA time zone name, such as America/Chicago: where the district's days begin and end."""
    value = (value or "").strip()
    try:
        _zone(value)
    except (ValueError, OSError, KeyError):   # ZoneInfoNotFoundError is a KeyError
        raise ConfigError(f"PORTAL_TIMEZONE must be a time zone name such as America/Chicago or "
                          f"Europe/Paris, not {value[:60]!r}") from None
    return value


def _badge_expires(value: str) -> str:
    from portal.badges.expiry import parse_expiry
    try:
        parse_expiry(value)
    except ValueError as e:
        raise ConfigError(f"PORTAL_BADGE_EXPIRES: {e}") from None
    return value


# How long opening a connection to a server database may take. Without it, a database host that
# does not answer (down, or a network dropping packets, not refusing) held every page, and the
# health check, about two minutes, until the workers were killed; now they answer 503 at once.
DATABASE_CONNECT_SECONDS = 10

# A connection already open fails as soon: TCP keepalives find a silent peer while the connection
# waits for an answer (5 s idle, then 3 probes 2 s apart), and data the server does not acknowledge
# in 10 s ends it. Without them the pool's pre-ping on a connection whose network went silent
# waited for ever: pages hung until gunicorn killed the worker (found by the operations review).
DATABASE_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
                       "keepalives_count": 3, "tcp_user_timeout": 10_000}

# For the server alone (a `portal` command may rightly wait: a migration, an import): a request
# gives up waiting for a lock after DATABASE_LOCK_SECONDS and on any statement after
# DATABASE_STATEMENT_SECONDS, both under gunicorn's 30 s. Without them a table locked by a
# migration running beside the old version (`portal db upgrade` is one transaction) held every
# sign-in until gunicorn killed the worker, and the log spoke of memory.
DATABASE_LOCK_SECONDS = 5
DATABASE_STATEMENT_SECONDS = 20


def _server_database_options(url: str, *, serving: bool = True) -> dict:
    """Engine options for a server database (not a SQLite file): test each connection as it leaves
    the pool; give up connecting after DATABASE_CONNECT_SECONDS and on a silent connection soon
    (DATABASE_KEEPALIVES); when `serving`, on a lock or a statement that takes too long. What the
    address sets itself (connect_timeout=3, a lock_timeout in its options=) stands; its other
    options (a search_path) are kept beside these."""
    if url.startswith("sqlite"):
        return {}
    options: dict = {"pool_pre_ping": True}
    if not url.startswith("postgresql"):
        return options
    try:
        query = dict(make_url(url).query)
    except ArgumentError:
        return options           # the engine says what is wrong with it
    connect_args = {key: value for key, value in
                    {"connect_timeout": DATABASE_CONNECT_SECONDS, **DATABASE_KEEPALIVES}.items()
                    if key not in query}
    if serving:
        own = query.get("options", "")
        own = " ".join(own) if isinstance(own, tuple) else own
        limits = [f"-c {name}={seconds}s" for name, seconds in
                  (("lock_timeout", DATABASE_LOCK_SECONDS), ("statement_timeout", DATABASE_STATEMENT_SECONDS))
                  if name not in own]
        if limits:
            connect_args["options"] = " ".join([own, *limits]).strip()
    if connect_args:
        options["connect_args"] = connect_args
    return options


def flask_config(settings: Settings, *, serving: bool = True) -> dict:
    """Translate settings into the Flask config keys the extensions read (`serving`: for the
    server people reach, not a `portal` command)."""
    return {
        "SETTINGS": settings,
        "SECRET_KEY": settings.secret_key,
        "SQLALCHEMY_DATABASE_URI": settings.database_url,
        # A server database can drop idle connections (a restart, a proxy's time-out): test each
        # one as it leaves the pool. A SQLite file cannot, and the test would cost a statement
        # on every request.
        # A failed statement's error names no values: they can be password, PIN or picture
        # hashes, or a student's data, and the error reaches the log.
        "SQLALCHEMY_ENGINE_OPTIONS": {"hide_parameters": True} | _server_database_options(settings.database_url, serving=serving),
        "REDIS_URL": settings.redis_url,
        "TESTING": settings.env == "testing",
        # In production __Host-portal_session: Secure, on / and without a Domain, so a sibling
        # subdomain cannot plant a session in the portal's browsers (portal.cookies).
        "SESSION_COOKIE_NAME": prefixed_name("portal_session", secure=settings.production),
        "SESSION_COOKIE_PATH": "/",
        "SESSION_COOKIE_DOMAIN": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": settings.production,
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session that holds it
        "MAX_CONTENT_LENGTH": 1 * 1024 * 1024,
    }
