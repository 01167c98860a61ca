"""Migrations keep data: upgrading a database that has rows loses none of them."""
import pytest
from sqlalchemy import create_engine, text

from portal.migrate import downgrade, upgrade


def test_upgrading_keeps_every_grant(tmp_path):
    # SQLite copies a table to alter it; with foreign keys on, dropping the old copy of `app`
    # used to cascade and delete every grant (0004 changed app.icon's type).
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0003_badges")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO district (id, sourced_id, name) VALUES (1, 'd1', 'D')"))
        conn.execute(text(
            "INSERT INTO app (id, slug, name, kind, url, icon, settings, released_fields) "
            "VALUES (1, 'library', 'Library', 'link', 'https://l.example/', '', '{}', '[]')"))
        conn.execute(text("INSERT INTO app_grant (id, app_id, district_id) VALUES (1, 1, 1)"))
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM app_grant")).scalar() == 1
        assert conn.execute(text("SELECT name FROM app")).scalar() == "Library"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_upgrading_gives_existing_icons_their_version(tmp_path):
    from portal.admin.icons import icon_version
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0004_app_icon_text")
    icon = "data:image/png;base64,iVBORw0KGgo="
    with engine.begin() as conn:
        for app_id, slug, value in ((1, "library", icon), (2, "math", "")):
            conn.execute(text(
                "INSERT INTO app (id, slug, name, kind, url, icon, settings, released_fields) "
                "VALUES (:id, :slug, :slug, 'link', 'https://l.example/', :icon, '{}', '[]')"),
                {"id": app_id, "slug": slug, "icon": value})
    upgrade(engine)
    with engine.connect() as conn:
        versions = dict(conn.execute(text("SELECT slug, icon_version FROM app")).all())
    assert versions == {"library": icon_version(icon), "math": ""}
    engine.dispose()


def test_wrong_tries_of_second_factors_upgrade_and_downgrade(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0005_app_icon_version")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO person (id, sourced_id, role, username, given_name, family_name, "
            "preferred_name, email, student_number, grades, enabled) "
            "VALUES (1, 'p1', 'student', 'ada', 'Ada', 'L', '', '', '', '04', 1)"))
        conn.execute(text("INSERT INTO badge_factor (person_id, pin_hash, locked_at, updated_at) "
                          "VALUES (1, 'hash', '2026-01-05 10:00:00', '2026-01-05 10:00:00')"))
    upgrade(engine)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT pin_hash, wrong_tries, locked_at FROM badge_factor")).one()
    assert row.pin_hash == "hash" and row.wrong_tries == 0 and row.locked_at is not None

    downgrade(engine, "0005_app_icon_version")
    with engine.connect() as conn:
        columns = {c[1] for c in conn.execute(text("PRAGMA table_info(badge_factor)"))}
        assert "wrong_tries" not in columns
        assert conn.execute(text("SELECT pin_hash FROM badge_factor")).scalar() == "hash"
    upgrade(engine)
    engine.dispose()


def school_with_students(conn, person_ids) -> None:
    """District 1, school 1 and these students, in an older schema's own words."""
    conn.execute(text("INSERT INTO district (id, sourced_id, name) VALUES (1, 'd1', 'D')"))
    conn.execute(text("INSERT INTO school (id, sourced_id, district_id, name, identifier) "
                      "VALUES (1, 's1', 1, 'Maple', '')"))
    for pid in person_ids:
        conn.execute(text(
            "INSERT INTO person (id, sourced_id, role, username, given_name, family_name, "
            "preferred_name, email, student_number, grades, enabled, district_id) "
            "VALUES (:id, :sid, 'student', :sid, 'Ada', 'L', '', '', '', '02', 1, 1)"),
            {"id": pid, "sid": f"p{pid}"})


def test_roster_ids_are_never_reused_after_upgrading(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0006_badge_factor_wrong_tries")
    with engine.begin() as conn:
        school_with_students(conn, (1, 2))
        for pid in (1, 2):
            conn.execute(text("INSERT INTO person_school (person_id, school_id) VALUES (:p, 1)"),
                         {"p": pid})
    upgrade(engine)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM person_school")).scalar() == 2
        indexes = {row[1] for row in conn.execute(text("PRAGMA index_list(person)"))}
        assert "ix_person_district_id" in indexes
        conn.execute(text("PRAGMA foreign_keys=ON"))
        conn.execute(text("DELETE FROM person WHERE id = 2"))
        conn.execute(text(
            "INSERT INTO person (sourced_id, role, username, given_name, family_name, "
            "preferred_name, email, student_number, grades, enabled) "
            "VALUES ('p3', 'student', 'p3', 'Bo', 'K', '', '', '', '02', 1)"))
        assert conn.execute(text("SELECT id FROM person WHERE sourced_id = 'p3'")).scalar() == 3
        sql = conn.execute(text("SELECT group_concat(sql) FROM sqlite_master WHERE name IN "
                                "('district', 'school', 'section', 'person')")).scalar()
        assert sql.count("AUTOINCREMENT") == 4
    downgrade(engine, "0006_badge_factor_wrong_tries")
    with engine.connect() as conn:   # person 2 left with its membership; person 1's stays
        assert conn.execute(text("SELECT count(*) FROM person_school")).scalar() == 1
        assert "AUTOINCREMENT" not in conn.execute(
            text("SELECT sql FROM sqlite_master WHERE name = 'person'")).scalar()
    engine.dispose()


def test_app_device_and_badge_ids_are_never_reused_after_upgrading(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0007_roster_ids_never_reused")
    with engine.begin() as conn:
        school_with_students(conn, (1,))
        for app_id in (1, 2):
            conn.execute(text(
                "INSERT INTO app (id, slug, name, kind, url, icon, icon_version, settings, "
                "released_fields) VALUES (:id, :slug, :slug, 'link', 'https://l.example/', '', '', "
                "'{}', '[]')"), {"id": app_id, "slug": f"app-{app_id}"})
            conn.execute(text("INSERT INTO app_grant (app_id, district_id) VALUES (:id, 1)"),
                         {"id": app_id})
        conn.execute(text("INSERT INTO kiosk_device (id, school_id, name, secret_hash, created_at) "
                          "VALUES (1, 1, 'Room 4', 'h1', '2026-09-01 08:00:00')"))
        for badge_id, revoked in ((1, "'2026-09-02 08:00:00'"), (2, "NULL")):
            conn.execute(text(
                "INSERT INTO badge (id, person_id, school_id, token_hash, kind, issued_at, expires_at, "
                f"revoked_at) VALUES (:id, 1, 1, :hash, 'standard', '2026-09-01 08:00:00', "
                f"'2027-06-30 00:00:00', {revoked})"), {"id": badge_id, "hash": f"t{badge_id}"})
    upgrade(engine)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM app_grant")).scalar() == 2
        assert conn.execute(text("SELECT count(*) FROM badge")).scalar() == 2
        conn.execute(text("PRAGMA foreign_keys=ON"))
        conn.execute(text("DELETE FROM app WHERE id = 2"))
        conn.execute(text(
            "INSERT INTO app (slug, name, kind, url, icon, icon_version, settings, released_fields) "
            "VALUES ('new', 'New', 'link', 'https://n.example/', '', '', '{}', '[]')"))
        assert conn.execute(text("SELECT id FROM app WHERE slug = 'new'")).scalar() == 3
        # The partial index still lets a student have voided badges beside the active one.
        index = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'uq_badge_active'")).scalar()
        assert "WHERE revoked_at IS NULL" in index
        sql = conn.execute(text("SELECT group_concat(sql) FROM sqlite_master WHERE type = 'table' "
                                "AND name IN ('app', 'kiosk_device', 'badge')")).scalar()
        assert sql.count("AUTOINCREMENT") == 3
    downgrade(engine, "0007_roster_ids_never_reused")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM app_grant")).scalar() == 1
        assert "AUTOINCREMENT" not in conn.execute(
            text("SELECT sql FROM sqlite_master WHERE name = 'badge'")).scalar()
    engine.dispose()


@pytest.mark.filterwarnings("ignore:.*expression-based index:UserWarning",
                            "ignore:.*expression-based index:sqlalchemy.exc.SAWarning")
def test_the_migrations_build_exactly_the_models_schema(tmp_path):
    # A model changed without a migration (or the reverse) shows here, not on a district's server.
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import portal.models  # noqa: F401  (every table in the metadata)
    from portal.db import Base
    engine = create_engine(f"sqlite:///{tmp_path / 'new.sqlite3'}")
    upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        # Alembic cannot reflect an index over expressions: compare what each would create.
        from sqlalchemy.schema import CreateIndex
        for index in (i for t in Base.metadata.tables.values() for i in t.indexes
                      if any(not hasattr(e, "name") for e in i.expressions)):
            made = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": index.name}).scalar()
            assert made == str(CreateIndex(index).compile(dialect=engine.dialect)).strip()
    engine.dispose()


def add_deletion_request(conn) -> None:
    """One open deletion request of district 1, as the 0009 to 0013 schemas store it."""
    conn.execute(text(
        "INSERT INTO deletion_request (district_id, app_name, protocol, subject, fields, first_at, "
        "last_at, asked_at, done_note) VALUES (1, 'A', 'saml', 's', '[]', '2026-01-01', '2026-01-01', "
        "'2026-01-02', '')"))


def test_deletion_requests_opt_outs_and_holds_upgrade_and_downgrade(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0008_app_device_badge_ids")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO district (id, sourced_id, name) VALUES (1, 'd1', 'D')"))
        conn.execute(text(
            "INSERT INTO person (id, sourced_id, role, username, given_name, family_name, "
            "preferred_name, email, student_number, grades, enabled) "
            "VALUES (1, 'p1', 'student', 'ada', 'Ada', 'L', '', '', '', '04', 1)"))
        conn.execute(text("INSERT INTO badge_factor (person_id, pin_hash, updated_at, wrong_tries) "
                          "VALUES (1, 'hash', '2026-01-05 10:00:00', 0)"))
    upgrade(engine)
    with engine.connect() as conn:   # an existing person is not on hold
        assert conn.execute(text("SELECT held_at, hold_reason FROM person")).one() == (None, "")
    with engine.begin() as conn:
        add_deletion_request(conn)
    downgrade(engine, "0008_app_device_badge_ids")
    with engine.connect() as conn:   # the person table was copied without the hold: nothing lost
        assert conn.execute(text("SELECT count(*) FROM district")).scalar() == 1
        assert conn.execute(text("SELECT username FROM person")).scalar() == "ada"
        assert conn.execute(text("SELECT count(*) FROM badge_factor")).scalar() == 1
        assert conn.execute(text(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('deletion_request', 'app_opt_out')")).scalar() == 0
    upgrade(engine)
    engine.dispose()


def test_scanner_networks_upgrade_and_downgrade_keep_badge_policies(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0011_security_holds")
    with engine.begin() as conn:
        school_with_students(conn, [])
        conn.execute(text(
            "INSERT INTO badge_policy (school_id, grades, second_factor_grades, factor, "
            "allow_browser_scanner, expires_on, updated_at) "
            "VALUES (1, 'KG,01', '', 'pin', 1, NULL, '2026-01-05 10:00:00')"))
    upgrade(engine)
    with engine.connect() as conn:   # an existing policy limits the scanner to no network
        assert conn.execute(text("SELECT grades, scanner_networks FROM badge_policy")).one() == ("KG,01", "")
    with engine.begin() as conn:
        conn.execute(text("UPDATE badge_policy SET scanner_networks = '10.20.0.0/16'"))
    downgrade(engine, "0011_security_holds")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT grades, allow_browser_scanner FROM badge_policy")).one() == ("KG,01", 1)
    upgrade(engine)
    engine.dispose()


def test_deletion_requests_outlive_districts_after_upgrading(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0012_scanner_networks")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO district (id, sourced_id, name) VALUES (1, 'd1', 'D')"))
        add_deletion_request(conn)
    upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.execute(text("DELETE FROM district"))
        assert conn.execute(text("SELECT district_id, app_name FROM deletion_request")).one() == (None, "A")
    downgrade(engine, "0012_scanner_networks")
    upgrade(engine)
    engine.dispose()


def test_usernames_are_stored_composed_unless_that_would_make_two_one(tmp_path):
    import unicodedata
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0014_one_open_deletion_request")
    jose, zoe = (unicodedata.normalize("NFD", name) for name in ("josé.garcia", "zoë.li"))
    with engine.begin() as conn:
        for person_id, username in ((1, jose), (2, "ada"), (3, zoe), (4, "zoë.li")):
            conn.execute(text(
                "INSERT INTO person (id, sourced_id, role, username, given_name, family_name, "
                "preferred_name, email, student_number, grades, enabled) "
                "VALUES (:id, :sid, 'student', :username, 'A', 'L', '', '', '', '04', 1)"),
                {"id": person_id, "sid": f"p{person_id}", "username": username})
    upgrade(engine)
    with engine.connect() as conn:
        names = dict(conn.execute(text("SELECT id, username FROM person")).all())
    # José could not sign in by typing his name; Zoë decomposed would become the other Zoë.
    assert names == {1: "josé.garcia", 2: "ada", 3: zoe, 4: "zoë.li"}
    engine.dispose()


def test_a_migration_that_fails_part_way_changes_nothing_and_can_be_run_again(settings, tmp_path):
    # A DBA's own index holds a name 0014 gives its third index. Before, pysqlite had committed
    # 0014's first two indexes on its own: the database was left half migrated, and the retry
    # failed on them ("index uq_deletion_request_open already exists").
    from tests.test_cli import _runner_on, _schema
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = create_engine(url)
    upgrade(engine, "0013_requests_outlive_districts")
    with engine.begin() as conn:
        conn.execute(text("CREATE INDEX ix_audit_event_at ON audit_event (at)"))
    before = _schema(engine)
    runner = _runner_on(settings, url)
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert _schema(engine) == before
    assert result.output.strip().splitlines() == [
        "Error: migration 0014_one_open_deletion_request failed (index ix_audit_event_at already "
        "exists); the upgrade was undone and the database is as it was before: fix that and run "
        "`portal db upgrade` again"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == \
            "0013_requests_outlive_districts"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_audit_event_at"))
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert result.output == ("upgraded the database from revision 0013_requests_outlive_districts "
                             f"to {_head()}\n")
    from portal.migrate import is_current
    assert is_current(engine)
    engine.dispose()


def test_every_table_the_models_keep_ids_for_has_autoincrement_after_upgrading(tmp_path):
    # 0013 copied deletion_request without it, though 0009 and the model ask for it.
    from portal.db import Base
    wanted = sorted(name for name, table in Base.metadata.tables.items()
                    if table.dialect_options["sqlite"]["autoincrement"])
    assert "deletion_request" in wanted
    engine = create_engine(f"sqlite:///{tmp_path / 'new.sqlite3'}")
    upgrade(engine)
    with engine.connect() as conn:
        sql = dict(conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")).all())
    assert [name for name in wanted if "AUTOINCREMENT" not in sql[name]] == []
    engine.dispose()


def test_a_database_0013_copied_without_autoincrement_gets_it_back_and_keeps_every_request(tmp_path):
    # Two admins had asked at once: 0014 merges request 2 into request 1 and deletes it. Before,
    # the next request was given id 2 again, the id a vendor may quote for the merged one.
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0013_requests_outlive_districts")
    with engine.begin() as conn:   # as the old 0013 left it: the table copied without AUTOINCREMENT
        with Operations(MigrationContext.configure(conn)).batch_alter_table(
                "deletion_request", recreate="always", table_kwargs={"sqlite_autoincrement": False}):
            pass
        school_with_students(conn, (1,))
        conn.execute(text(
            "INSERT INTO app (id, slug, name, kind, url, icon, icon_version, settings, released_fields) "
            "VALUES (1, 'reading', 'Reading', 'saml', 'https://r.example/', '', '', '{}', '[]')"))
        for request_id, fields in ((1, '["given_name"]'), (2, '["grade"]'), (3, '["given_name"]')):
            conn.execute(text(
                "INSERT INTO deletion_request (id, district_id, person_id, app_id, app_name, protocol, "
                "subject, fields, first_at, last_at, asked_at, done_at, done_note) VALUES (:id, 1, 1, 1, "
                "'Reading', 'saml', 's', :fields, '2026-01-01', '2026-01-01', '2026-01-0' || :id, "
                ":done, '')"), {"id": request_id, "fields": fields, "done": "2026-02-01" if request_id == 1 else None})
    with engine.connect() as conn:
        assert "AUTOINCREMENT" not in conn.execute(
            text("SELECT sql FROM sqlite_master WHERE name = 'deletion_request'")).scalar()
    upgrade(engine)
    with engine.begin() as conn:
        assert "AUTOINCREMENT" in conn.execute(
            text("SELECT sql FROM sqlite_master WHERE name = 'deletion_request'")).scalar()
        # Request 1 (done) stays; 3 was merged into 2 (the oldest open one) and is gone.
        assert conn.execute(text("SELECT id, fields, done_at IS NOT NULL FROM deletion_request "
                                 "ORDER BY id")).all() == [(1, '["given_name"]', 1), (2, '["grade", "given_name"]', 0)]
        indexes = {row[1] for row in conn.execute(text("PRAGMA index_list(deletion_request)"))}
        assert {"uq_deletion_request_open", "ix_deletion_request_person_app"} <= indexes
        conn.execute(text("UPDATE deletion_request SET done_at = '2026-03-01' WHERE id = 2"))
        add_deletion_request(conn)
        assert conn.execute(text("SELECT max(id) FROM deletion_request")).scalar() == 4
    engine.dispose()


def test_grants_to_the_same_group_are_merged_into_the_oldest(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0016_deletion_request_ids")
    with engine.begin() as conn:
        school_with_students(conn, ())
        conn.execute(text(
            "INSERT INTO app (id, slug, name, kind, url, icon, icon_version, settings, released_fields) "
            "VALUES (1, 'library', 'Library', 'link', 'https://l.example/', '', '', '{}', '[]')"))
        for grant_id, district, school, grade in (
                (1, 1, None, None), (2, 1, None, None),          # the district, twice
                (3, 1, 1, "03"), (4, None, 1, "03"),           # --district --school, and --school
                (5, None, None, "03"), (6, 1, None, "03"),      # a grade everywhere; in the district
                (7, None, None, "03")):
            conn.execute(text("INSERT INTO app_grant (id, app_id, district_id, school_id, grade) "
                              "VALUES (:id, 1, :district, :school, :grade)"),
                         {"id": grant_id, "district": district, "school": school, "grade": grade})
    upgrade(engine)
    with engine.begin() as conn:
        assert [row[0] for row in conn.execute(text("SELECT id FROM app_grant ORDER BY id"))] == [1, 3, 5, 6]
        conn.execute(text("INSERT INTO app_grant (app_id, school_id, grade) VALUES (1, 1, '04')"))
    downgrade(engine, "0016_deletion_request_ids")
    upgrade(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    """An empty database: a SQLite file, and a schema of its own on PostgreSQL when
    PORTAL_TEST_DATABASE_URL names one (as the suite's run on it does)."""
    import os
    import uuid
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
        yield engine
        engine.dispose()
        return
    base = os.environ.get("PORTAL_TEST_DATABASE_URL")
    if not base:
        pytest.skip("PORTAL_TEST_DATABASE_URL is not set")
    from tests.conftest import _postgres_schema_url
    schema = f"test_migration_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(_postgres_schema_url(base, schema))
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def test_events_and_requests_keep_the_name_of_whoever_did_them_after_upgrading(empty_database):
    # The audit log and a deletion request name a staff member the roster removed since: by the
    # name kept with the event (their actor_id is then NULL). Events and requests already there
    # take the name of whoever is still on the roster; one already removed has none to take.
    engine = empty_database
    upgrade(engine, "0017_one_grant_per_group")
    with engine.begin() as conn:    # in words both databases take (school_with_students: SQLite's)
        conn.execute(text("INSERT INTO district (id, sourced_id, name) VALUES (1, 'd1', 'D')"))
        for person_id, username, given, preferred in ((1, "ada", "Ada", ""), (2, "tess.t", "Tess", "Tessa"),
                                                      (3, "dee.a", "Dee", "")):
            conn.execute(text(
                "INSERT INTO person (id, sourced_id, role, username, given_name, family_name, "
                "preferred_name, email, student_number, grades, enabled, district_id, hold_reason) "
                "VALUES (:id, :sid, 'teacher', :username, :given, 'Teach', :preferred, '', '', '', "
                ":yes, 1, '')"),
                {"id": person_id, "sid": f"p{person_id}", "username": username, "given": given,
                 "preferred": preferred, "yes": True})
        for event_id, actor in ((1, 2), (2, None), (3, 3)):
            conn.execute(text("INSERT INTO audit_event (id, at, kind, actor_id, person_id, data) "
                              "VALUES (:id, '2026-01-05 10:00:00+00', 'password_set', :actor, 1, '{}')"),
                         {"id": event_id, "actor": actor})
        conn.execute(text(
            "INSERT INTO deletion_request (id, district_id, person_id, app_name, protocol, subject, fields, "
            "first_at, last_at, asked_at, asked_by_id, done_at, done_by_id, done_note) VALUES (1, 1, 1, 'A', "
            "'saml', 's', '[]', '2026-01-01', '2026-01-01', '2026-01-02', 3, '2026-01-03', 2, '')"))
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, actor_name FROM audit_event ORDER BY id")).all() == [
            (1, "Tessa Teach (tess.t)"), (2, None), (3, "Dee Teach (dee.a)")]
        assert conn.execute(text("SELECT asked_by_name, done_by_name FROM deletion_request")).one() == (
            "Dee Teach (dee.a)", "Tessa Teach (tess.t)")
    downgrade(engine, "0017_one_grant_per_group")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_event")).scalar() == 3
        assert conn.execute(text("SELECT asked_by_id, done_by_id FROM deletion_request")).one() == (3, 2)
        if engine.dialect.name == "sqlite":
            assert "AUTOINCREMENT" in conn.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'deletion_request'")).scalar()
    upgrade(engine)


def test_a_student_keeps_an_active_badge_at_each_school_after_upgrading(empty_database):
    # Found by review: one active badge of each kind per student, so a school's new card voided
    # the one another school had given a student at both. The index is per student, kind and
    # school now; downgrading keeps the newest of each student's kind and voids the others.
    from sqlalchemy.exc import IntegrityError
    engine = empty_database
    upgrade(engine, "0018_actor_names")
    insert = text("INSERT INTO badge (id, person_id, school_id, token_hash, kind, issued_at, expires_at) "
                  "VALUES (:id, 1, :school, :hash, 'permanent', '2026-09-01 08:00:00+00', "
                  "'2027-07-31 00:00:00+00')")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO district (id, sourced_id, name) VALUES (1, 'd1', 'D')"))
        for school, name in ((1, "Maple"), (2, "Oak")):
            conn.execute(text("INSERT INTO school (id, sourced_id, district_id, name, identifier) "
                              "VALUES (:id, :sid, 1, :name, '')"),
                         {"id": school, "sid": f"s{school}", "name": name})
        conn.execute(text(
            "INSERT INTO person (id, sourced_id, role, username, given_name, family_name, preferred_name, "
            "email, student_number, grades, enabled, district_id) "
            "VALUES (1, 'p1', 'student', 'ada', 'Ada', 'L', '', '', '', '02', TRUE, 1)"))
        conn.execute(insert, {"id": 1, "school": 1, "hash": "t1"})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert, {"id": 2, "school": 2, "hash": "t2"})    # before: one per student
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(insert, {"id": 2, "school": 2, "hash": "t2"})    # Oak's card beside Maple's
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert, {"id": 3, "school": 2, "hash": "t3"})    # still one per school
    downgrade(engine, "0018_actor_names")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, revoked_at IS NULL, revoked_reason FROM badge "
                                 "ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [(1, False, "one per student (downgrade)"), (2, True, None)]
    upgrade(engine)


def _a_new_column_comes_and_goes(engine, before: str, table: str, insert: str, column: str,
                                 change: str, kept: str, expected: tuple) -> None:
    """A revision after `before` adds a NULL `column` to `table`: a row inserted before it reads
    NULL after the upgrade; changed (`change`), the row outlives the downgrade (`kept` reads
    `expected`) and SQLite's copy keeps AUTOINCREMENT; the upgrade runs again."""
    upgrade(engine, before)
    with engine.begin() as conn:
        conn.execute(text(insert))
    upgrade(engine)
    with engine.begin() as conn:
        assert conn.execute(text(f"SELECT {column} FROM {table}")).scalar() is None
        conn.execute(text(change))
    downgrade(engine, before)
    with engine.connect() as conn:
        assert tuple(conn.execute(text(kept)).one()) == expected
        if engine.dialect.name == "sqlite":
            assert "AUTOINCREMENT" in conn.execute(
                text(f"SELECT sql FROM sqlite_master WHERE name = '{table}'")).scalar()
    upgrade(engine)


def test_a_re_keyed_persons_subject_seed_comes_and_goes_without_touching_the_rest(empty_database):
    _a_new_column_comes_and_goes(
        empty_database, "0019_one_active_badge_per_school", "person",
        "INSERT INTO person (id, sourced_id, role, username, given_name, family_name, preferred_name, "
        "email, student_number, grades, enabled) "
        "VALUES (1, 'p1', 'student', 'ada', 'Ada', 'L', '', '', '', '02', TRUE)",
        "subject_seed", "UPDATE person SET subject_seed = 'p0', sourced_id = 'p2'",
        "SELECT id, sourced_id, username FROM person", (1, "p2", "ada"))


def test_apps_are_in_use_after_upgrading_and_removed_ones_listed_again_after_downgrading(empty_database):
    _a_new_column_comes_and_goes(
        empty_database, "0021_removed_actor_index", "app",
        "INSERT INTO app (id, slug, name, kind, url, icon, icon_version, settings, released_fields) "
        "VALUES (1, 'library', 'Library', 'link', 'https://l.example/', '', '', '{}', '[]')",
        "removed_at", "UPDATE app SET removed_at = CURRENT_TIMESTAMP",
        "SELECT id, name FROM app", (1, "Library"))


# Found by the scale review: removing a person read every badge (badge.issued_by_id had no index),
# 55 ms a person at 200,000 badges on SQLite while holding the write lock; and the log of one kind
# and an app's page read millions of events. Migration 0023 indexes them.
INDEXES_0023 = {
    "school": {"ix_school_district"},
    "app_grant": {"ix_app_grant_district", "ix_app_grant_school", "ix_app_grant_section"},
    "app_opt_out": {"ix_app_opt_out_app", "ix_app_opt_out_by"},
    "kiosk_device": {"ix_kiosk_device_created_by"},
    "badge": {"ix_badge_issued_by", "ix_badge_last_used_device"},
    "deletion_request": {"ix_deletion_request_app", "ix_deletion_request_asked_by", "ix_deletion_request_done_by"},
    "audit_event": {"ix_audit_event_actor_kind_at", "ix_audit_event_no_one_kind_at", "ix_audit_event_app_at"},
}


@pytest.mark.filterwarnings("ignore:.*expression-based index:UserWarning",
                            "ignore:.*expression-based index:sqlalchemy.exc.SAWarning")
def test_the_indexes_of_removals_and_of_the_admin_pages_come_and_go(empty_database):
    from sqlalchemy import inspect
    engine = empty_database
    upgrade(engine, "0022_app_removed_at")
    with engine.begin() as conn:    # a teacher's badge for a student, and an event the teacher caused
        school_with_students(conn, ())
        for person_id, role in ((1, "student"), (2, "teacher")):
            conn.execute(text(
                "INSERT INTO person (id, sourced_id, role, username, given_name, family_name, preferred_name, "
                "email, student_number, grades, enabled, district_id, hold_reason) "
                "VALUES (:id, :sid, :role, :sid, 'Ada', 'L', '', '', '', '02', TRUE, 1, '')"),
                {"id": person_id, "sid": f"p{person_id}", "role": role})
        conn.execute(text("INSERT INTO badge (id, person_id, school_id, token_hash, kind, issued_at, issued_by_id, "
                          "expires_at) VALUES (1, 1, 1, 't1', 'permanent', '2026-09-01 08:00:00+00', 2, "
                          "'2027-07-31 00:00:00+00')"))
        conn.execute(text("INSERT INTO audit_event (id, at, kind, actor_id, actor_name, person_id, data) VALUES "
                          "(1, '2026-09-01 08:00:00+00', 'badge_issued', 2, 'Ada L (p2)', 1, '{}')"))

    def indexes() -> dict[str, set[str]]:
        found = inspect(engine)
        return {table: {i["name"] for i in found.get_indexes(table)} & names for table, names in INDEXES_0023.items()}
    assert indexes() == {table: set() for table in INDEXES_0023}
    upgrade(engine)
    assert indexes() == INDEXES_0023
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            made = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'ix_audit_event_actor_kind_at'"))
        else:
            made = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_audit_event_actor_kind_at' "
                                     "AND schemaname = current_schema()"))
        definition = made.scalar()
    assert "WHERE" in definition and "actor_id IS NOT NULL" in definition, definition    # a partial index
    downgrade(engine, "0022_app_removed_at")
    assert indexes() == {table: set() for table in INDEXES_0023}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT issued_by_id FROM badge")).scalar() == 2
        assert conn.execute(text("SELECT actor_id FROM audit_event")).scalar() == 2
    upgrade(engine)
    assert indexes() == INDEXES_0023


def test_every_removal_finds_the_rows_that_point_at_what_it_removes_along_an_index(empty_database):
    # Removing a row (the roster a person, class, school or district; a school its classroom
    # devices) makes the database set NULL, or delete, the rows whose foreign key names it: it
    # finds them as these statements do. With no index that leads with the key, each removed row
    # read the whole table. Every foreign key of the models, on the schema the migrations build.
    import portal.models  # noqa: F401  (every table in the metadata)
    from portal.db import Base
    engine = empty_database
    upgrade(engine)
    whole = []
    with engine.connect() as conn:
        sqlite = engine.dialect.name == "sqlite"
        if not sqlite:
            conn.execute(text("SET LOCAL enable_seqscan = off"))    # the tables are empty
        for table in Base.metadata.sorted_tables:
            for key in table.foreign_keys:
                column = key.parent.name
                action = (f"DELETE FROM {table.name}" if key.ondelete == "CASCADE"
                          else f"UPDATE {table.name} SET {column} = NULL")
                statement = f"{action} WHERE {column} = 1"
                if sqlite:
                    plan = [row[-1] for row in conn.execute(text("EXPLAIN QUERY PLAN " + statement))]
                    scans = any(step.startswith(f"SCAN {table.name}") for step in plan)
                else:
                    plan = [row[0] for row in conn.execute(text("EXPLAIN " + statement))]
                    scans = any(f"Seq Scan on {table.name}" in step for step in plan)
                if scans or not plan:
                    whole.append(f"{table.name}.{column}")
        conn.rollback()
    assert whole == []


def _head() -> str:
    from alembic.script import ScriptDirectory

    from portal.migrate import alembic_config
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
