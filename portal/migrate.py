"""Schema changes by Alembic, run from the portal (`portal db upgrade`) or from tests."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from portal.db import refresh_statistics

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def is_current(engine: Engine) -> bool:
    """True when the database has the newest schema (False: empty, older or newer than this code)."""
    return schema_state(engine)[0] == "current"


def schema_state(engine: Engine) -> tuple[str, list[str]]:
    """How the database's schema stands to this code, and its revisions: "current"; "older"
    (empty, or behind: `portal db upgrade` brings it up); or "newer" (with the revisions this
    code does not know: a newer portal migrated it, and this one can neither use nor upgrade it)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    script = ScriptDirectory.from_config(alembic_config())
    if current == set(script.get_heads()):
        return "current", sorted(current)
    unknown = current - {r.revision for r in script.walk_revisions()}
    return ("newer", sorted(unknown)) if unknown else ("older", sorted(current))


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Bring the database behind `engine` up to `revision`; its revisions before and after
    (None before: the database had no tables)."""
    start, end = _migrate(engine, command.upgrade, revision)
    if end != start:
        refresh_statistics(engine)      # for the new indexes too
    return start, end


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database behind `engine` back to `revision` (for testing migrations)."""
    _migrate(engine, command.downgrade, revision)


class MigrationFailed(RuntimeError):
    """A migration stopped part-way; the message names it and what the database said. The whole
    upgrade was one transaction, so the database is as it was before it."""


class DatabaseBusy(MigrationFailed):
    """Another process held the database's write lock longer than a statement waits: nothing was
    started (the message says so)."""


def _migrate(engine: Engine, step, revision: str) -> tuple[str | None, str | None]:
    cfg = alembic_config()
    applied = cfg.attributes["applied"] = []
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by copying it and dropping the old one; with foreign keys on,
            # that drop would cascade and delete every row pointing at it (all of an app's
            # grants, say). Alembic's advice: keys off while migrating (outside a transaction,
            # where the pragma is a no-op), then check them.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
            # pysqlite opens a transaction only before INSERT, UPDATE or DELETE: a CREATE INDEX
            # or a table copy before the first of those was committed at once, so a migration
            # failing part-way stayed half done and its retry met its own leftovers. With the
            # driver's transaction handling off and our own BEGIN (SQLAlchemy's pysqlite recipe),
            # the whole upgrade is one transaction, as on PostgreSQL. IMMEDIATE: the write lock
            # now, not a "database is locked" half-way through.
            driver = connection.connection.dbapi_connection
            driver_level, driver.isolation_level = driver.isolation_level, None
        try:
            if sqlite:
                _begin_immediate(connection)
            start = _current_revision(connection)
            cfg.attributes["connection"] = connection
            try:
                step(cfg, revision)
            except DBAPIError as e:
                raise MigrationFailed(_failed(start, applied, e, step is command.upgrade,
                                              engine.url.password)) from e
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise MigrationFailed(f"the upgrade left {len(broken)} broken references "
                                          "and was undone: the database is as it was before")
            end = _current_revision(connection)
            connection.commit()
            return start, end
        except BaseException:
            connection.rollback()
            raise
        finally:
            if sqlite:
                driver.isolation_level = driver_level
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def _begin_immediate(connection) -> None:
    from sqlalchemy.exc import OperationalError

    from portal.errors import database_said
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except OperationalError as e:   # "database is locked": another process is writing
        raise DatabaseBusy(f"the database is in use by another process ({database_said(e)}); "
                           "nothing changed: run `portal db upgrade` again when it is done") from e


def _current_revision(connection) -> str | None:
    from alembic.runtime.migration import MigrationContext
    return MigrationContext.configure(connection).get_current_revision()


def _failed(start: str | None, applied: list[str], error: DBAPIError, upgrading: bool,
            password: str | None) -> str:
    """Say which migration failed and why, for `portal db upgrade`'s one line: upgrading, the one
    after the last that went through (the history is one line of revisions)."""
    from alembic.script import ScriptDirectory

    from portal.errors import database_said
    done = applied[-1] if applied else start
    failing = next((r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()
                    if upgrading and r.down_revision == done), "a migration")
    return (f"migration {failing} failed ({database_said(error, password)}); the upgrade was undone and the "
            "database is as it was before")


def sqlite_autoincrement(tables: tuple[str, ...], autoincrement: bool) -> None:
    """In a migration: give `tables` (or take away) SQLite's AUTOINCREMENT, so that an id, once
    used, is never handed out again. Each table is copied (ids, indexes and constraints kept;
    sqlite_sequence starts at the largest id) under the new CREATE TABLE; foreign keys are off
    while migrating (_migrate). Nothing to do on PostgreSQL, whose sequences never reuse ids."""
    from alembic import op
    from sqlalchemy import text
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for table in tables:
        sql = bind.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"),
                           {"t": table}).scalar()
        if ("AUTOINCREMENT" in sql.upper()) == autoincrement:
            continue    # already so: no copy
        with op.batch_alter_table(table, recreate="always",
                                  table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass
