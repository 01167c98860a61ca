"""GET /healthz: whether this worker can serve, for a load balancer or a monitoring check.

It answers 200 "ok" when the database and Redis both answer, else 503 naming what does not, in
plain words (never an address, a password or an error's text: the page is public). It reads no
session and sets no cookie, and costs one round trip to each store.
"""
from __future__ import annotations

import logging

import redis
from flask import Blueprint, Response, current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from portal.db import db

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


def _database_answers() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError as e:
        log.warning("health check: the database did not answer (%s)", type(e).__name__)
        return False
    finally:
        db.session.rollback()


def _redis_answers() -> bool:
    try:
        return bool(current_app.extensions["redis"].ping())
    except redis.RedisError as e:
        log.warning("health check: Redis did not answer (%s)", type(e).__name__)
        return False


@bp.get("/healthz")
def healthz() -> Response:
    problems = [words for answers, words in ((_database_answers(), "the database does not answer"),
                                             (_redis_answers(), "Redis does not answer"))
                if not answers]
    body, status = ("ok\n", 200) if not problems else ("unavailable: " + "; ".join(problems) + "\n", 503)
    response = Response(body, status=status, mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response
