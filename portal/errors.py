"""Every error a person can meet becomes a short page in plain words, never a traceback."""
from __future__ import annotations

import logging
import time
from typing import NamedTuple
from urllib.parse import urlsplit

import redis
from flask import (
    Flask, current_app, g, has_app_context, jsonify, make_response, redirect, render_template,
    request, session,
)
from flask.json.provider import DefaultJSONProvider
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from werkzeug.exceptions import HTTPException

from portal.models import Role
from portal.redis_store import RedisUnavailable, redis_said

log = logging.getLogger(__name__)


class Advice(NamedTuple):
    """What to do, in words for whoever reads the page (see reader()): a student, or anyone not
    signed in, in words a child of five can act on; a signed-in teacher or administrator, who has
    no teacher to ask; and anyone at all, when who it is cannot be told."""

    student: str
    staff: str
    anyone: str


def tell(words: str) -> Advice:
    """Advice that ends in someone to tell ("... tell {whom}."), worded for each reader."""
    return Advice(*(words.format(whom=whom) for whom in WHOM_TO_TELL))


# Whom each reader tells of a fault that is not theirs to mend (Advice's order).
WHOM_TO_TELL = ("your teacher", "your district's IT team", "the school office")

MESSAGES = {
    400: ("That request did not make sense", "Go back and try again."),
    401: ("You are not signed in", "Sign in and try again."),
    403: ("You can't open this page", Advice(
        student="Sign in with an account that may see it, or ask your teacher.",
        staff="Sign in with an account that may see it, or ask a district administrator.",
        anyone="Sign in with an account that may see it, or ask the school office.")),
    404: ("We can't find that page", "Check the address, or go back to your apps."),
    405: ("That doesn't work here", "Go back and use the buttons on the page."),
    413: ("That is too big", "Send something smaller."),
    429: ("Too many tries", Advice(
        student="Wait a few minutes and try again, or ask your teacher for help.",
        staff="Wait a few minutes and try again. If it keeps happening, tell your district's IT team.",
        anyone="Wait a few minutes and try again, or ask the school office for help.")),
    500: ("Something went wrong on our side", Advice(
        student="Try again in a minute. If it keeps happening, tell your teacher.",
        staff="Try again in a minute. If it keeps happening, tell your district's IT team.",
        anyone="Try again in a minute. If it keeps happening, tell the school office.")),
    503: ("Sign-in is unavailable", "Try again in a minute."),
}


def as_sentence(line: str) -> str:
    """A one-line reason written for the command line ("there is no ..."), as a sentence for a page."""
    return line[:1].upper() + line[1:] + ("" if line.endswith(".") else ".")


def wants_json() -> bool:
    """The caller sent JSON or asks for it (a kiosk device, the scanner page, a staff script)."""
    return request.is_json or request.accept_mimetypes.best == "application/json"


# Set on views that only a signed-in person may use (portal.auth.roles.role_required).
SIGN_IN_REQUIRED = "sign_in_required"


def needs_sign_in() -> bool:
    """Whether this request's view is one only a signed-in person may use."""
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    return bool(getattr(view, SIGN_IN_REQUIRED, False))


def reader(status: int) -> str:
    """Who reads this request's error page, as a field of Advice: "staff" for a signed-in teacher
    or administrator, "student" for a student or anyone not signed in, "anyone" when it cannot
    be told. Told once a request: a second page (make_unavailable after a view's) speaks to the
    same reader."""
    if "_error_reader" not in g:
        g._error_reader = _who_reads(status)
    return g._error_reader


def _who_reads(status: int) -> str:
    # Every page loads the signed-in person (Flask-Login's template context), and that may be
    # what failed (the database or Redis is away; a commit left the person to be read again):
    # on a 5xx page a person not loaded yet is not tried (but a session that names no one loads
    # no one), and on any page a person who cannot be loaded or read is not tried again. The page
    # is then shown to no one in particular (an anonymous person, for the template too) rather
    # than failing again inside itself.
    person = g.get("_login_user")
    try:
        names_no_one = "_user_id" not in session and not getattr(session, "unavailable", False)
        if person is None and (status < 500 or names_no_one):
            person = current_user._get_current_object()
        if person is not None:
            return "staff" if person.is_authenticated and person.role is not Role.student else "student"
    except Exception as e:  # noqa: BLE001  (the error being handled is the news)
        log.warning("the person reading a %s page could not be told: %s", status, type(e).__name__)
    g._login_user = current_app.login_manager.anonymous_user()
    return "anyone"


def worded(advice: str | Advice, status: int) -> str:
    """The advice for whoever reads this request's `status` page (reader())."""
    return getattr(advice, reader(status)) if isinstance(advice, Advice) else advice


def whom_to_tell(status: int) -> str:
    """Whom the reader of this request's error page tells of a fault (WHOM_TO_TELL), for a page
    of its own that words it so."""
    return worded(tell("{whom}"), status)


def error_page(status: int, title: str | None = None, advice: str | Advice | None = None,
               back: tuple[str, str] | None = None):
    """Render the plain-words error page for `status`: as JSON (error, advice) for a caller that
    wants JSON, else HTML, whose link goes to `back` ((address, words)) or the person's apps.
    Advice (the default's, or the one given) is worded for whoever reads it."""
    default_title, default_advice = MESSAGES.get(status, MESSAGES[500])
    title, advice = title or default_title, advice or default_advice
    reader(status)      # also what keeps the page from loading a person who cannot be loaded
    advice = worded(advice, status)
    if wants_json():
        return make_response(jsonify(error=title, advice=advice), status)
    return make_response(render_template("error.html", title=title, advice=advice, status=status,
                                         back=back), status)


# How long to tell a browser or an app's server to wait while Redis is away.
STORE_RETRY_AFTER = "60"
# ...and a classroom kiosk (views marked @retry_soon): it sends only while a child holds a badge
# up, and backs off by itself when the outage lasts; a blip of a second must not leave it deaf
# for a minute.
DEVICE_RETRY_AFTER = "3"
RETRY_SOON = "retry_soon"
# The words that go with it (MESSAGES' 503 says a minute, as STORE_RETRY_AFTER does).
DEVICE_UNAVAILABLE_ADVICE = "Try again in a few seconds."


def retry_soon(view):
    """Mark a device API view: its "unavailable" answers say to try again in a few seconds."""
    setattr(view, RETRY_SOON, True)
    return view


def _retries_soon() -> bool:
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    return getattr(view, RETRY_SOON, False)


def retry_after() -> str:
    """The Retry-After of a 503 for this request's view."""
    return DEVICE_RETRY_AFTER if _retries_soon() else STORE_RETRY_AFTER


def unavailable_page():
    """The 503 "sign-in is unavailable" answer for this request's view, whose words and
    Retry-After say the same wait: a minute for a person or an app, seconds for a device."""
    response = error_page(503, advice=DEVICE_UNAVAILABLE_ADVICE if _retries_soon() else None)
    response.headers["Retry-After"] = retry_after()
    return response


def make_unavailable(response) -> None:
    """Turn an already built response into the 503 "sign-in is unavailable" page, in place."""
    page = unavailable_page()
    response.status_code = 503
    response.set_data(page.get_data())
    response.content_type = page.content_type
    for header in ("Location", "Set-Cookie"):
        response.headers.pop(header, None)
    response.headers["Retry-After"] = page.headers["Retry-After"]
    response.headers["Cache-Control"] = "no-store"


class PortalError(Exception):
    """A domain error with a status and words for the person who met it."""

    status = 400
    title = None
    advice = None
    # Where the page's link goes, (address, words), when not to the person's apps: the page the
    # person was working on, set by the view that knows it.
    back: tuple[str, str] | None = None

    def __init__(self, title: str | None = None, advice: str | None = None):
        super().__init__(title or self.title or "")
        if title:
            self.title = title
        if advice:
            self.advice = advice


class UnreadableInput(PortalError):
    status = 400
    title = "That had characters we can't read"
    advice = "Go back and type it again."


def refuse_unreadable_input() -> None:
    """Stop a request whose path, query, form or JSON body carries a NUL character: no field of
    ours has a use for one, and PostgreSQL can neither store nor compare it (a query would fail
    as a 500). Nor a JSON string with half a UTF-16 pair ("\\ud800"), which is no text at all:
    it cannot be encoded, hashed or stored."""
    if "\x00" in request.path:
        raise UnreadableInput()
    try:
        # Werkzeug decodes the query strictly as UTF-8 when it is first read: a raw byte that is
        # not UTF-8 (gunicorn passes them through) would be a UnicodeDecodeError in any view.
        request.query_string.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableInput() from None
    fields = [request.args] + ([request.form] if request.method == "POST" else [])
    if any("\x00" in key or "\x00" in value for f in fields for key, value in f.items(multi=True)):
        raise UnreadableInput()
    if request.method == "POST" and request.is_json and _holds_unreadable(request.get_json(silent=True)):
        raise UnreadableInput()


def _holds_unreadable(value) -> bool:
    """True when a string anywhere in parsed JSON (a key or a value) holds a NUL or a lone
    surrogate. A loop, not recursion: the body may nest as deep as the parser allowed."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class PortalJSONProvider(DefaultJSONProvider):
    """Flask's JSON, except that a body nested too deeply to parse is bad JSON (a 400, or None
    from get_json(silent=True)) rather than a RecursionError and a 500."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def store_unavailable(e: Exception):
    """Redis (sessions, limits, codes) cannot be reached: the 503 page, "try again in a minute"."""
    return _unavailable("redis", redis_said(e))


class NothingChanged(PortalError):
    """Redis failed before a change that ends sessions (a new badge, a new password) began: the
    change is refused and nothing changed. Once such a change is committed, its answer says what
    was done instead (a badge to print, a password to write down) with a note."""
    status = 503
    advice = tell("Part of the portal isn't answering just now, so nothing changed. Try again in a "
                  "minute. If it keeps happening, tell {whom}.")


def refused_before_any_change(e: Exception, title: str) -> NothingChanged:
    """NothingChanged with `title` ("No badge was made"), for Redis's failure `e` (logged as
    store_unavailable logs it)."""
    log.warning("redis unavailable: %s", redis_said(e))
    return NothingChanged(title)


def database_said(e: Exception, password: str | None = None) -> str:
    """The first line of what the database driver said: never the statement or its values, nor
    the database's password (`password`, or that of the app in context), for the log or a
    command's one line."""
    said = str(getattr(e, "orig", None) or e).strip().splitlines()
    line = (said[0] if said else type(e).__name__)
    if password is None and has_app_context() and "SQLALCHEMY_DATABASE_URI" in current_app.config:
        password = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"]).password
    if password:
        line = line.replace(password, "***")
    return line[:200]


def database_unavailable(e: Exception):
    """The database cannot be reached, or stayed busy past its time-out: the same 503 page."""
    return _unavailable("database", database_said(e))


# How long a reading of the schema's revision stands (it is read only when a statement failed).
SCHEMA_CHECK_SECONDS = 30
# What the page of a database whose schema is not this code's says, whom to tell for each reader.
SCHEMA_ADVICE = tell("Tell {whom}: the portal's database needs updating. The people who run the "
                     "portal will find what to do in its log.")


def database_failed(e: Exception):
    """A statement failed. Against a schema older or newer than this code (a missing table or
    column: OperationalError on SQLite, ProgrammingError on PostgreSQL) no retry will help: the
    page says so, and the log says what to run. Otherwise an OperationalError is an outage (the
    503 page) and a ProgrammingError a bug (the 500 page, with its traceback in the log)."""
    if schema_out_of_step() is not None:
        return error_page(503, "Sign-in is not working right now", SCHEMA_ADVICE)
    if isinstance(e, OperationalError):
        return database_unavailable(e)
    raise e


def schema_out_of_step() -> str | None:
    """"older" or "newer" when the database's schema is not this code's, None when it is or
    cannot be read (an outage says more). Read when a statement fails, at most every
    SCHEMA_CHECK_SECONDS, and logged once when it changes: create_app does not check (a bench
    or `portal demo` creates the app before it migrates)."""
    from portal.db import db
    from portal.migrate import schema_state
    seen = current_app.extensions.get("schema_seen")
    if seen is not None and time.monotonic() - seen[0] < SCHEMA_CHECK_SECONDS:
        return seen[1]
    try:
        state, revisions = schema_state(db.engine)
    except Exception:  # noqa: BLE001  (not readable: the error being handled is the news)
        state, revisions = None, []
    state = None if state == "current" else state
    if state is not None and (seen is None or seen[1] != state):
        at = ", ".join(revisions) or "no tables"
        if state == "older":
            log.error("the database schema is older than this code (the database is at %s): "
                      "run `portal db upgrade`", at)
        else:
            log.error("the database schema is newer than this code (revision %s, which it does "
                      "not know): a newer version of the portal migrated it; run that version", at)
    current_app.extensions["schema_seen"] = (time.monotonic(), state)
    return state


def _unavailable(store: str, reason: str):
    log.warning("%s unavailable: %s", store, reason)
    return unavailable_page()


# A form's token that is not this session's: the page was open while the session ended.
CSRF_EXPIRED = ("This page was open too long", "Go back, reload the page and try again.")
# Over HTTPS Flask-WTF also refuses a form whose Referer is missing or another site's, a token
# good or not: the words say what helps then (its reasons, as it words them, are the keys).
CSRF_MESSAGES = {
    "The referrer header is missing.": (
        "Your browser did not say which page this came from",
        "Go back, reload the page and try again. If it happens again, your browser or an add-on "
        "hides the page you come from: allow it for this site, or ask whoever looks after the computer."),
    "The referrer does not match the host.": (
        "That came from another website",
        "Open the portal yourself, by its usual address, and try again from its own page."),
}


def _say_if_the_proxy_drops_the_host(description: str) -> None:
    """Log why a form from the portal's own page was refused as another site's: the request's
    Host is not the portal's public one, so a reverse proxy in front does not pass it on. Every
    sign-in fails so, and nothing else said why (found by the deployment review, behind an nginx
    with its default Host). Only hosts are logged, never the page or its query."""
    issuer = current_app.config["SETTINGS"].oidc_issuer
    if description != "The referrer does not match the host." or not issuer:
        return
    public = urlsplit(issuer).netloc
    if urlsplit(request.referrer or "").netloc == public and request.host != public:
        log.warning("a form from the portal's own page at %s was refused as another site's: this "
                    "request's Host is %r, not %s. The reverse proxy must pass the Host header "
                    "(nginx: proxy_set_header Host $host;), or X-Forwarded-Host with "
                    "PORTAL_TRUSTED_PROXIES set", public, request.host[:100], public)


def register_error_handlers(app: Flask) -> None:
    """Turn every exception into a page in one place."""

    @app.errorhandler(PortalError)
    def _portal_error(e: PortalError):
        return error_page(e.status, e.title, e.advice, e.back)

    @app.errorhandler(CSRFError)
    def _csrf(e):
        if wants_json() and needs_sign_in() and not current_user.is_authenticated:
            # A script whose session ended holds a token of that session: what it must hear is
            # that it is signed out, as it would with a good token (portal.auth.roles).
            return error_page(401)
        _say_if_the_proxy_drops_the_host(e.description)
        if (request.endpoint == "auth.logout" and e.description not in CSRF_MESSAGES
                and not current_user.is_authenticated):
            # A sign-out whose session had already ended (a classroom Chromebook woken from sleep
            # after the server's idle limit: its tiles page's timer signs out with that session's
            # token). Nothing is left to sign out: on a scanner device, back to the scanner.
            from portal.badges import flow   # the badge flows import this module
            scanner = flow.scanner_of_browser()
            if scanner:
                return redirect(scanner)
        title, advice = CSRF_MESSAGES.get(e.description, CSRF_EXPIRED)
        return error_page(400, title, advice)

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        response = error_page(e.code or 500)
        allow = dict(e.get_headers()).get("Allow")  # a 405 says which methods do work
        if allow:
            response.headers["Allow"] = allow
        return response

    app.register_error_handler(RedisUnavailable, store_unavailable)
    app.register_error_handler(redis.RedisError, store_unavailable)
    app.register_error_handler(OperationalError, database_failed)
    app.register_error_handler(ProgrammingError, database_failed)

    @app.errorhandler(500)
    def _unexpected(e):
        # Flask has already logged the exception; the person sees words, not a traceback.
        return error_page(500)
