"""GET /healthz: whether this worker can serve, for a load balancer or a monitoring check.

It answers 200 "ok" when the database answers and is at this code's schema, Redis stores a value,
the worker's pages loaded and SAML sign-ins can be signed, else 503 naming what is wrong, in
plain words (never an address, a file, a password, a revision or an error's text: the page is
public). It reads no session, even when a cookie comes with it (portal.sessions skips it as it
does static files), and sets no cookie. It costs one round trip to each store (to Redis a write
that expires, not a PING); the schema is read at most every 30 s, the SAML signing keys once.
"""
from __future__ import annotations

import logging

import redis
from flask import Blueprint, Response, current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from portal.db import db
from portal.errors import database_said, schema_out_of_step
from portal.redis_store import REFUSED_PASSWORD, refused_password

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


def _database_answers() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError as e:
        # The database's own words (the log is private; the page is not), never its password.
        log.warning("health check: the database did not answer (%s)", database_said(e))
        return False
    finally:
        db.session.rollback()


# Written, with a short life, by every check: a Redis that answers PING but refuses writes (full
# under noeviction, a replica) fails every sign-in, so a PING alone said ok while they failed.
HEALTH_KEY = "portal:health"


def _redis_trouble() -> str | None:
    """None when Redis stores a value; else what is wrong, in the page's words."""
    try:
        current_app.extensions["redis"].set(HEALTH_KEY, 1, ex=10)
        return None
    except redis.RedisError as e:
        if refused_password(e):
            log.warning("health check: %s", REFUSED_PASSWORD)
            return "Redis refused the portal's password"
        if not isinstance(e, redis.ResponseError):
            log.warning("health check: Redis did not answer (%s)", type(e).__name__)
            return "Redis does not answer"
        # It answered, and said no (OOM, READONLY).
        log.warning("health check: Redis refused a write (%s)", type(e).__name__)
        return "Redis refuses writes"


def _saml_signs() -> bool:
    """Whether SAML sign-ins can be signed (the log names the file and why when not)."""
    from portal.sso import SigningUnavailable
    from portal.sso.saml.flows import signing_keys
    try:
        signing_keys()
        return True
    except SigningUnavailable:
        return False


@bp.get("/healthz")       # portal.sessions reads no session for this path
def healthz() -> Response:
    database = _database_answers()
    problems = [words for words in ("the database does not answer" if not database else None,
                                    _redis_trouble()) if words]
    # A database whose schema is not this code's (`portal db upgrade` not run yet, or run by a
    # newer version): every signed-in page says sign-in is not working (found by review).
    if database and schema_out_of_step() is not None:
        problems.append("the database is not at this version's schema")
    if current_app.extensions.get("portal.pages"):    # its templates did not load at start
        problems.append("this worker cannot show its pages")
    if not _saml_signs():
        problems.append("SAML sign-ins cannot be signed")
    # Not OpenID Connect's keys: they are every worker's (one folder), so a folder with no key yet
    # fails them all alike, and the load balancer would take every worker out for it, password
    # and SAML sign-ins with them (found by review: a district with no OpenID app, whose workers
    # had never made the first key, would lose the whole portal on upgrading). The OpenID
    # endpoints answer 503 and log why, once.
    body, status = ("ok\n", 200) if not problems else ("unavailable: " + "; ".join(problems) + "\n", 503)
    response = Response(body, status=status, mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response
