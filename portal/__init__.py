"""The district's student portal: create_app() wires config, extensions and blueprints."""
from __future__ import annotations

import logging
import re
from pathlib import Path

from flask import Flask
from jinja2 import BytecodeCache
from werkzeug.middleware.proxy_fix import ProxyFix

from portal.config import (DEFAULT_INSTANCE, FROM_CHECKOUT, ROOT, ConfigError, flask_config,
                           load_settings, private_folder)

PACKAGE = Path(__file__).resolve().parent
# What the sign-in page needs: loaded once at start, so /healthz says 503 for a worker whose copy
# of them is broken rather than ok while every page is a 500.
START_TEMPLATES = ("base.html", "_messages.html", "error.html", "auth/login.html")


class CompiledTemplates(BytecodeCache):
    """Compiled templates, kept in memory for every app this process builds: a server builds
    one, but the tests build one per test, and compiling the same templates again for each was a
    fifth of the suite's time. Jinja checks each entry against its template's source, so an
    edited template is compiled again."""

    def __init__(self):
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


COMPILED_TEMPLATES = CompiledTemplates()


def create_app(test_config: dict | None = None, *, command_line: bool = False) -> Flask:
    """Build the portal app from PORTAL_* settings (tests may override any key). `command_line`:
    for a `portal` command (portal dev among them), which is no server people reach."""
    templates, static = page_folders()
    app = Flask(
        __name__,
        template_folder=str(templates),
        static_folder=str(static),
        instance_path=str(DEFAULT_INSTANCE),
    )
    app.jinja_options = {**app.jinja_options, "bytecode_cache": COMPILED_TEMPLATES}
    _log_like_the_server()
    settings = (test_config or {}).get("SETTINGS") or load_settings()
    app.config.from_mapping(flask_config(settings, serving=not command_line))
    if test_config:
        app.config.update(test_config)
    from portal.db import IdConverter
    app.url_map.converters["int"] = IdConverter   # before any route is added
    app.instance_path = str(settings.instance_path)
    private_folder(settings.instance_path)

    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies,
                                x_proto=settings.trusted_proxies, x_host=settings.trusted_proxies)

    _keep_secrets_out_of_request_lines()

    from portal.extensions import csrf, db, login_manager, redis_store
    from portal.sessions import RedisSessionInterface, require_session_store

    db.init_app(app)
    redis_store.init_app(app)
    login_manager.init_app(app)
    app.session_interface = RedisSessionInterface()
    # Before the CSRF check: without Redis there is no session to hold a token.
    app.before_request(require_session_store)
    csrf.init_app(app)

    from portal.errors import PortalJSONProvider, refuse_unreadable_input, register_error_handlers
    app.json = PortalJSONProvider(app)
    register_error_handlers(app)
    app.before_request(refuse_unreadable_input)

    from portal import auth, health, launchpad
    app.register_blueprint(health.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(launchpad.bp)
    from portal.badges import kiosk_views as kiosk, views as badges
    app.register_blueprint(badges.bp)
    app.register_blueprint(kiosk.bp)
    from portal import teacher
    app.register_blueprint(teacher.bp)
    from portal.admin import views as admin
    app.register_blueprint(admin.bp)
    from portal.sso import saml
    app.register_blueprint(saml.bp)
    if settings.production:    # a SAML key or certificate that can't be read stops start-up
        from portal.sso.saml.flows import load_signing_keys
        load_signing_keys(app)
    from portal.sso import oidc
    app.register_blueprint(oidc.bp)

    from portal.cli import register_commands
    register_commands(app)

    _wire_request_hooks(app)
    _add_time_filters(app)
    app.extensions["portal.pages"] = _pages_load(app)
    if settings.env == "development" and not command_line:
        _warn_development(app)
    return app


def page_folders() -> tuple[Path, Path]:
    """The templates and static files: inside the installed package (a wheel carries them as
    portal/templates and portal/static), else beside it in a checkout (make run, pip install -e)."""
    for base in (PACKAGE, ROOT) if FROM_CHECKOUT else (PACKAGE,):
        if (base / "templates" / "base.html").is_file():
            return base / "templates", base / "static"
    raise ConfigError(f"the portal's templates are not in {PACKAGE / 'templates'}: install the "
                      f"portal from a wheel or sdist built with its pyproject.toml (or run it from "
                      f"a checkout of the repository)")


def _pages_load(app: Flask) -> str | None:
    """None if the sign-in page's templates load, else what went wrong (logged once)."""
    try:
        for name in START_TEMPLATES:
            app.jinja_env.get_template(name)
    except Exception as e:   # missing, unreadable, not a template: no page can be shown
        problem = f"{name}: {type(e).__name__}: {e}"[:300]
        logging.getLogger(__name__).error("the portal's pages cannot be shown (%s in %s)",
                                          problem, app.template_folder)
        return problem
    return None


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ServerLogHandler(logging.Handler):
    """Hands each record to the server's own handlers (gunicorn's error log: stderr, its
    --error-logfile, which it reopens on USR1, or syslog), formatted the portal's way."""

    def __init__(self, targets: list[logging.Handler]):
        super().__init__()
        self.targets = list(targets)

    def emit(self, record: logging.LogRecord) -> None:
        for target in self.targets:
            target.acquire()    # reentrant: handle() takes it again; the server's own lines wait
            try:
                kept = target.formatter
                target.setFormatter(self.formatter)
                try:
                    target.handle(record)
                finally:
                    target.setFormatter(kept)
            finally:
                target.release()


def _log_like_the_server() -> None:
    """The portal's lines with their time, level and logger, from INFO: with no handler on the
    way (gunicorn configures only its own loggers) Python printed WARNING and up bare and dropped
    the rest. Under gunicorn they go where its error log goes, at its --log-level. Where a handler
    is on the way already (pytest's, a --log-config's, a second app's), nothing is added."""
    logger = logging.getLogger(__name__)
    if logger.hasHandlers():
        return
    server = logging.getLogger("gunicorn.error")
    handler = ServerLogHandler(server.handlers) if server.handlers else logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(server.level if server.handlers and server.level else logging.INFO)


def _warn_development(app: Flask) -> None:
    """gunicorn or `flask run` with PORTAL_ENV unset serves in development mode without a word:
    made-up secrets, a SQLite file, addresses from each request's Host, no Secure cookies.
    Right on a developer's machine, wrong for a district's; one line says which it is."""
    app.logger.warning(
        "PORTAL_ENV is not production, so this portal serves in development mode: what is not set "
        "is made up (secrets and keys in %s, a SQLite database there), addresses come from each "
        "request and cookies are not Secure. To serve people, set PORTAL_ENV=production and the "
        "settings README.md lists under \"In production\"", app.instance_path)


def _add_time_filters(app: Flask) -> None:
    """Pages show times in the district's time zone (PORTAL_TIMEZONE), as staff read a clock."""
    from portal.badges.expiry import last_day
    from portal.local_time import local

    # Every time a page shows comes from a UTCDateTime column: aware, in UTC.
    app.add_template_filter(local, "local")
    # The last day a badge works, where the district is (it ends at the next midnight there).
    app.add_template_filter(lambda value: last_day(value, app.config["SETTINGS"].zone), "last_day")


class RequestLineFilter(logging.Filter):
    """A development server's request lines (werkzeug's, as `flask run` prints them) keep the
    method, the path and the status, never a query string (ID tokens in logout addresses, SAML
    messages, login hints) nor the code of a one-time link (/kiosk/handoff/<code>, /kiosk/bind/<code>)."""

    _QUERY = re.compile(r'\?[^\s"]*')
    _CODE = re.compile(r'(/kiosk/(?:handoff|bind)/)[^\s"?/]+')

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        kept = self._CODE.sub(r"\1...", self._QUERY.sub("?...", text))
        if kept != text:
            record.msg, record.args = kept, ()
        return True


def _keep_secrets_out_of_request_lines() -> None:
    logger = logging.getLogger("werkzeug")
    if not any(isinstance(f, RequestLineFilter) for f in logger.filters):
        logger.addFilter(RequestLineFilter())


def _wire_request_hooks(app: Flask) -> None:
    from sqlalchemy import bindparam, exists, select

    from flask import session

    from portal.auth.services import password_still_current
    from portal.badges.flow import app_clock
    from portal.badges.sessions import is_badge_session
    from portal.extensions import db, login_manager
    from portal.models import Badge, Person

    # Every signed-in request loads its person: one statement, built once.
    enabled_person = select(Person).where(Person.id == bindparam("id"), Person.enabled.is_(True),
                                          Person.held_at.is_(None))
    # ...and a session begun with a badge, only while that badge works, in the same statement
    # (its primary key: the tiles after a badge sign-in are the hot path). Voiding a badge ends
    # its sessions only in Redis, and a Redis restored from a copy taken before (a snapshot, a
    # replica) would hold them again.
    badge_person = enabled_person.where(exists().where(
        Badge.id == bindparam("badge_id"), Badge.person_id == Person.id,
        Badge.revoked_at.is_(None), Badge.expires_at > bindparam("now")))

    @login_manager.user_loader
    def load_person(person_id: str):
        badge_id = session.get("badge_id")
        if badge_id is None and is_badge_session(session):
            return None   # a badge session names its badge: fail closed if one ever does not
        try:
            if badge_id is None:
                person = db.session.execute(enabled_person, {"id": int(person_id)}).scalar_one_or_none()
            else:
                person = db.session.execute(badge_person, {
                    "id": int(person_id), "badge_id": int(badge_id), "now": app_clock()(),
                }).scalar_one_or_none()
        except (TypeError, ValueError):
            return None
        if person is not None and not password_still_current(session, person):
            return None  # begun with a password that has since been replaced
        return person

    production = app.config["SETTINGS"].production

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if production:
            # Production is served over HTTPS only (its cookies are Secure): a browser that has
            # been here once never tries plain HTTP, where a network could read or change pages.
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self' https: http:",
        )
        # Pages and JSON answers may carry a person's data (a teacher's script reads a student's
        # badges as JSON): a shared Chromebook's cache keeps none. Public documents (discovery,
        # keys, static files) say how long they may be kept themselves.
        if response.mimetype in ("text/html", "application/json"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
