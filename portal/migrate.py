"""Schema changes by Alembic, run from the portal (`portal db upgrade`) or from tests."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def is_current(engine: Engine) -> bool:
    """True when the database has the newest schema (False: empty, or older than this code)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    return set(current) == set(ScriptDirectory.from_config(alembic_config()).get_heads())


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database behind `engine` up to `revision`."""
    _migrate(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database behind `engine` back to `revision` (for testing migrations)."""
    _migrate(engine, command.downgrade, revision)


def _migrate(engine: Engine, step, revision: str) -> None:
    cfg = alembic_config()
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by copying it and dropping the old one; with foreign keys on,
            # that drop would cascade and delete every row pointing at it (all of an app's
            # grants, say). Alembic's advice: keys off while migrating, then check them.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            cfg.attributes["connection"] = connection
            step(cfg, revision)
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration left {len(broken)} broken references")
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def sqlite_autoincrement(tables: tuple[str, ...], autoincrement: bool) -> None:
    """In a migration: give `tables` (or take away) SQLite's AUTOINCREMENT, so that an id, once
    used, is never handed out again. Each table is copied (ids, indexes and constraints kept;
    sqlite_sequence starts at the largest id) under the new CREATE TABLE; foreign keys are off
    while migrating (_migrate). Nothing to do on PostgreSQL, whose sequences never reuse ids."""
    from alembic import op
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in tables:
        with op.batch_alter_table(table, recreate="always",
                                  table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass
