"""The database: one SQLAlchemy 2 declarative base and the Flask-SQLAlchemy extension."""
from __future__ import annotations

import logging

from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase
from flask_sqlalchemy import SQLAlchemy
from werkzeug.routing import IntegerConverter

# Stable constraint names so Alembic migrations read the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)

log = logging.getLogger(__name__)


# How long a SQLite statement waits for another connection's write to finish.
BUSY_TIMEOUT_MS = 10_000


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    # SQLite ignores foreign keys unless asked, and WAL lets readers run beside the writer.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.close()


# SQLite's planner picks its indexes by statistics (the sqlite_stat1 table) that it gathers
# only when asked. Without them it read the audit log of a 100,000-student district along the
# wrong index (9 s of CPU for one page). With analysis_limit, ANALYZE looks at about this many
# rows of each index: milliseconds, at any size. PostgreSQL's autovacuum keeps its own.
ANALYSIS_LIMIT = 400


def refresh_statistics(engine: Engine) -> None:
    """On SQLite, gather the planner's statistics anew, in a short transaction of its own, after
    the data changed shape (a roster import, a migration's new indexes). A failure (another
    process holding the write lock past the busy timeout) is logged: the work before it stands,
    and the next import tries again."""
    if engine.dialect.name != "sqlite":
        return
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
            connection.exec_driver_sql("ANALYZE")
            connection.commit()
    except OperationalError as e:
        log.warning("the database's statistics were not refreshed (%s): pages may be slower until "
                    "the next roster import", type(e).__name__)


# Ids as the database holds them: ASCII digits, below 2**63 (PostgreSQL's bigint, SQLite's
# INTEGER). A longer number from a request is no id: passed on, it failed in the database as a
# 500, and int() of another script's digits ("²") raised.
MAX_ID_DIGITS = 18


def parse_id(text) -> int | None:
    """The id written in `text` (a query parameter, a form field, a cookie, an argument), or None."""
    if isinstance(text, str) and 0 < len(text) <= MAX_ID_DIGITS and text.isascii() and text.isdigit():
        return int(text)
    return None


class IdConverter(IntegerConverter):
    """The portal's <int:...> in routes: an id as parse_id reads it; anything else is no page."""

    regex = rf"[0-9]{{1,{MAX_ID_DIGITS}}}"
