"""SQLite's planner chooses indexes by statistics it gathers only when asked (sqlite_stat1):
without them it read a big district's audit log along the wrong index (9 s for one page). A
roster import and a migration gather them; PostgreSQL keeps its own."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from portal.db import db
from portal.migrate import upgrade
from portal.roster import import_roster


def analysed(engine) -> set[str]:
    with engine.connect() as connection:
        if not connection.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first():
            return set()
        return {row[0] for row in connection.exec_driver_sql("SELECT tbl FROM sqlite_stat1")}


@pytest.fixture
def sqlite_only(db_session):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("statistics are gathered on SQLite only (PostgreSQL's autovacuum keeps its own)")


def test_a_roster_import_gathers_the_planners_statistics(sqlite_only, db_session, bundles, roster_rows):
    with db.engine.connect() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS sqlite_stat1")
        connection.commit()
    import_roster(db_session, bundles.write(roster_rows))
    assert {"person", "enrollment", "person_school", "section"} <= analysed(db.engine)


def test_a_migration_gathers_them_too(tmp_path):
    # A district's database, events and all, upgraded to this version: ANALYZE records only
    # tables with rows (an empty one has nothing to tell the planner).
    engine = create_engine(f"sqlite:///{tmp_path / 'district.sqlite3'}")
    upgrade(engine, "0022_app_removed_at")
    with engine.connect() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS sqlite_stat1")
        for n in range(50):
            connection.execute(text("INSERT INTO audit_event (at, kind, data) VALUES (:at, 'launch', '{}')"),
                               {"at": f"2026-01-01 00:00:{n:02d}.000000"})
        connection.commit()
    upgrade(engine)
    assert "audit_event" in analysed(engine)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    engine.dispose()
