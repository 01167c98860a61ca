"""Found by review, each with its fix: a district's audit log showed another district's app
grants made from the command line; two "Ask to delete" at the same moment made two open
requests; the person page read every release record of the student; and the log read and
sorted the whole audit table."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, event, select, text

from portal.migrate import downgrade, upgrade
from portal.models import DeletionRequest, Event
from tests.admin.helpers import cli
from tests.admin.test_deletions import _ask, _events, _requests
from tests.admin.test_shared_pages import _client, _far_school, _text, shared  # noqa: F401  (the fixture)


def _sqlite_only(app):
    from portal.db import db
    if db.engine.dialect.name != "sqlite":
        pytest.skip("reads SQLite's query plan")


# 1. The audit log: an event by no one and about no one shows only where its data proves it belongs.

def test_command_line_grants_show_in_the_log_of_the_district_they_name_only(app, shared, roster, runner):
    from portal import audit
    from portal.db import db
    far_school = _far_school(roster)
    roster.section(far_school, "sec-far", "Far Secret Room")
    db.session.commit()
    cli(runner, "apps", "add-link", "Far Counselling", "https://counsel.example/")
    cli(runner, "apps", "grant", "Far Counselling", "--school", "sch-far", "--grade", "02")
    cli(runner, "apps", "grant", "Reading Garden", "--section", "sec-far")
    cli(runner, "apps", "ungrant", "Reading Garden", "--section", "sec-far")
    # Recorded before grants named their ids: about no one, by no one, naming a school in words.
    saml = db.session.merge(shared["saml"])
    audit.record("app_granted", app=saml, data={"to": "school sch-far (Far Elementary), grade 04"})
    # A whole-district grant whose admin has since left the roster (actor gone: SET NULL).
    audit.record("app_granted", app=saml, data={"to": "whole district", "district_id": far_school.district_id})

    mine = _text(_client(app, "dee.admin").get("/admin/log"))
    assert "sch-far" not in mine and "Far Elementary" not in mine and "sec-far" not in mine
    assert "Far Counselling" not in mine and "whole district" not in mine
    theirs = _text(_client(app, "far.admin").get("/admin/log"))
    assert "app granted: Far Counselling the command line or the roster to: school sch-far (Far Elementary), grade 02" in theirs
    assert "app granted: Reading Garden the command line or the roster to: section sec-far (Far Secret Room)" in theirs
    assert "grant removed: Reading Garden the command line or the roster from: section sec-far (Far Secret Room)" in theirs
    assert "to: whole district" in theirs
    assert "grade 04" not in theirs       # the old event proves nothing: no district's log shows it


def test_the_grant_events_name_the_ids_of_the_group(app, shared, roster, runner):
    from portal.db import db
    far_school = _far_school(roster)
    section = roster.section(far_school, "sec-far", "Far Room")
    db.session.commit()
    cli(runner, "apps", "grant", "Library", "--section", "sec-far", "--role", "student")
    cli(runner, "apps", "ungrant", "Library", "--section", "sec-far", "--role", "student")
    admin = _client(app, "dee.admin")
    from tests.badges.conftest import csrf_from
    admin.post("/admin/apps/library/grants", data={"district": "yes", "csrf_token": csrf_from(admin, "/admin/")})
    granted = [e.data for e in db.session.scalars(select(Event).where(Event.kind == "app_granted").order_by(Event.id))]
    removed = [e.data for e in db.session.scalars(select(Event).where(Event.kind == "app_ungranted"))]
    assert granted[-2] == {"to": "section sec-far (Far Room), role student", "section_id": section.id}
    assert removed == [{"from": "section sec-far (Far Room), role student", "section_id": section.id}]
    assert granted[-1] == {"to": "whole district", "district_id": shared["admin"].district_id}


def test_a_command_line_change_to_an_app_shows_where_the_app_is_open(app, shared, runner):
    # Reading Garden is open to Dee's school; the other district has no grant of it.
    cli(runner, "apps", "release", "Reading Garden", "given_name")
    said = "fields an app receives changed: Reading Garden the command line or the roster fields: subject, given_name"
    assert said in _text(_client(app, "dee.admin").get("/admin/log"))
    assert "fields an app receives changed:" not in _text(_client(app, "far.admin").get("/admin/log"))


def test_a_portal_of_one_district_shows_it_every_command_line_change(app, roster, runner):
    from portal import audit
    from portal.db import db
    from portal.models import Role
    from tests.sso.conftest import register_and_grant
    school = roster.school("sch-maple", "Maple Elementary")
    roster.person("dee.admin", role=Role.district_admin, given="Dee", family="Admin")
    saml = register_and_grant(db.session, "Reading Garden", school=school)
    cli(runner, "apps", "grant", "Reading Garden", "--grade", "03")
    audit.record("app_granted", app=saml, data={"to": "grade 05"})      # before grants named ids
    audit.record("app_granted", app=saml, data={"to": "school gone", "school_id": 9999})  # removed since
    text = _text(_client(app, "dee.admin").get("/admin/log"))
    assert "to: grade 03" in text and "to: grade 05" in text and "to: school gone" in text


def test_the_log_is_the_latest_events_of_every_kind_of_the_district_once_each(app, shared):
    from portal import audit
    from portal.admin.shared import audit_log
    from portal.db import db
    ada, admin, stranger = (db.session.merge(shared[k]) for k in ("ada", "admin", "stranger"))
    audit.record("hold_placed", person=ada, actor=admin)                  # about and by the district
    audit.record("app_release_set", app=db.session.merge(shared["saml"]), data={"fields": ["subject"]})
    audit.record("password_set", person=stranger, actor=admin)            # by the district only
    audit.record("sign_in", person=stranger, data={"method": "password"})  # none of its business
    kinds = [line.kind for line in audit_log(db.session, admin.district_id, limit=3)]
    assert kinds == ["password_set", "app_release_set", "hold_placed"]
    every = audit_log(db.session, admin.district_id)
    assert len({(line.at, line.kind) for line in every}) == len(every)
    assert [line.kind for line in audit_log(db.session, admin.district_id, person=ada, kind="hold_placed")] == \
        ["hold_placed"]
    assert audit_log(db.session, admin.district_id, person=stranger) == []   # not the district's person
    assert audit_log(db.session, None) == []


# 2. One open deletion request per person and app.

def test_two_asks_at_the_same_moment_make_one_request(app, shared, monkeypatch):
    from portal.admin import deletions
    admin = _client(app, "dee.admin")
    first = _ask(admin, shared["ada"], shared["saml"].slug)
    # The second ask looked before the first was written: it finds none open.
    real, looks = deletions.open_request, []

    def looked_too_early(*args, **kwargs):
        looks.append(1)
        return None if len(looks) == 1 else real(*args, **kwargs)
    monkeypatch.setattr(deletions, "open_request", looked_too_early)
    again = _ask(admin, shared["ada"], shared["saml"].slug)
    assert again.status_code == 303 and again.headers["Location"] == first.headers["Location"]
    assert "was already asked on" in _text(admin.get(again.headers["Location"]))
    assert [done for *_, done in _requests(app)] == [False]
    assert len(_events(app, "deletion_requested")) == 1


def test_the_database_keeps_one_open_request_per_person_and_app(app, shared):
    from sqlalchemy.exc import IntegrityError

    from portal.db import db

    def row(done_at=None):
        now = datetime.now(timezone.utc)
        return DeletionRequest(district_id=shared["admin"].district_id, person_id=shared["ada"].id,
                               app_id=shared["saml"].id, app_name="Reading Garden", protocol="saml",
                               subject="s", fields=[], first_at=now, last_at=now, asked_at=now,
                               done_at=done_at, done_note="")
    db.session.add_all([row(datetime.now(timezone.utc)), row(datetime.now(timezone.utc)), row()])
    db.session.commit()            # done ones beside an open one: fine
    db.session.add(row())
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    assert db.session.query(DeletionRequest).count() == 3


def test_upgrading_merges_open_duplicates_into_the_oldest(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0013_requests_outlive_districts")
    insert = text("INSERT INTO deletion_request (id, district_id, person_id, app_id, app_name, protocol, subject, "
                  "fields, first_at, last_at, asked_at, done_at, done_note) VALUES (:id, 1, :person, 1, 'A', "
                  "'saml', 's', :fields, :first, :last, :asked, :done, :note)")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO district (id, sourced_id, name) VALUES (1, 'd1', 'D')"))
        for pid in (1, 2):
            conn.execute(text(
                "INSERT INTO person (id, sourced_id, role, username, given_name, family_name, preferred_name, "
                "email, student_number, grades, enabled, district_id, hold_reason) "
                "VALUES (:id, :sid, 'student', :sid, 'Ada', 'L', '', '', '', '02', 1, 1, '')"), {"id": pid, "sid": f"p{pid}"})
        conn.execute(text("INSERT INTO app (id, slug, name, kind, url, icon, icon_version, settings, released_fields) "
                          "VALUES (1, 'a', 'A', 'saml', 'https://a.example/', '', '', '{}', '[]')"))
        for values in (
            (1, 1, '["subject"]', "2026-01-01", "2026-01-02", "2026-02-01 10:00:00", None, ""),   # done: stays
            (2, 1, '["subject", "grade"]', "2026-01-03", "2026-02-01", "2026-03-01 10:00:00", None, ""),  # kept
            (3, 1, '["subject", "email"]', "2026-01-02", "2026-02-05", "2026-03-01 10:00:00", None, ""),
            (4, 1, '["subject"]', "2026-01-03", "2026-02-01", "2026-03-01 10:00:01", None, ""),
            (5, 2, '["subject"]', "2026-01-03", "2026-02-01", "2026-03-01 10:00:00", None, ""),    # another person
        ):
            conn.execute(insert, dict(zip(("id", "person", "fields", "first", "last", "asked", "done", "note"), values)))
        conn.execute(text("UPDATE deletion_request SET done_at = '2026-02-02 10:00:00', done_note = 'ok' WHERE id = 1"))
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, fields, first_at, last_at, done_at IS NULL FROM deletion_request "
                                 "ORDER BY id")).all()
        assert [(r[0], r[4]) for r in rows] == [(1, 0), (2, 1), (5, 1)]
        kept = rows[1]
        assert kept[1].replace(" ", "") == '["subject","grade","email"]'
        assert (str(kept[2])[:10], str(kept[3])[:10]) == ("2026-01-02", "2026-02-05")
        merged = conn.execute(text("SELECT person_id, app_id, data FROM audit_event WHERE kind = 'deletion_merged' "
                                   "ORDER BY id")).all()
        assert [(p, a, d.replace(" ", "")) for p, a, d in merged] == [
            (1, 1, '{"request":3,"into":2}'), (1, 1, '{"request":4,"into":2}')]
        index = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'uq_deletion_request_open'")).scalar()
        assert "UNIQUE" in index and "WHERE done_at IS NULL" in index
        names = {r[1] for r in conn.execute(text("PRAGMA index_list(audit_event)"))}
        assert {"ix_audit_event_at", "ix_audit_event_actor_at"} <= names
    downgrade(engine, "0013_requests_outlive_districts")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM deletion_request")).scalar() == 3
        assert conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name IN ('uq_deletion_request_open', "
                                 "'ix_audit_event_at', 'ix_audit_event_actor_at')")).scalar() == 0
    upgrade(engine)
    engine.dispose()


# 3. The person page: summed up by the database, and only the latest releases read.

def _statements(engine, found):
    @event.listens_for(engine, "before_cursor_execute")
    def grab(conn, cursor, statement, parameters, context, executemany):
        if "audit_event" in statement:
            found.append((statement, parameters))
    return grab


def _utc(moment: datetime) -> datetime:
    """SQLite hands back the UTC time without its zone; PostgreSQL with it."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def test_what_an_app_received_is_summed_up_by_the_database(app, shared):
    from portal.admin.shared import releases_about
    from portal.db import db
    from portal.models import App, AppKind
    ada = db.session.merge(shared["ada"])
    gone = App(slug="gone", name="Gone App", kind=AppKind.oidc, url="https://gone.example/", icon="", settings={})
    db.session.add(gone)
    db.session.flush()
    start = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    rows = [{"at": start + timedelta(minutes=i), "kind": "userinfo" if i % 2 else "launch", "person_id": ada.id,
             "actor_id": None, "app_id": gone.id,
             "data": {"protocol": "oidc", "fields": ["subject", "email"] if i < 30 else ["subject", "given_name"]}}
            for i in range(40)]
    rows.append({"at": start - timedelta(days=1), "kind": "launch", "person_id": ada.id, "actor_id": None,
                 "app_id": gone.id, "data": {"protocol": "oidc", "fields": "not a list"}})
    db.session.execute(Event.__table__.insert(), rows)
    db.session.commit()
    db.session.delete(gone)            # removed from the portal: its records stay, app_id gone
    db.session.commit()

    found = []
    listener = _statements(db.engine, found)
    try:
        summaries, releases = releases_about(db.session, ada, limit=7)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert found and all("LIMIT" in s or "GROUP BY" in s for s, _ in found), found
    by_name = {s.app_name: s for s in summaries}
    assert list(by_name) == ["a removed app", "Library", "Reading Garden"]
    removed = by_name["a removed app"]
    assert removed.app is None and removed.launches == 21
    assert removed.fields == ["subject", "given_name", "email"]            # catalogue order
    assert (_utc(removed.first_at), _utc(removed.last_at)) == (start - timedelta(days=1), start + timedelta(minutes=39))
    assert by_name["Reading Garden"].launches == 2 and by_name["Library"].fields == []
    assert [r.app.name if r.app else None for r in releases] == ["Library", "Reading Garden", "Reading Garden",
                                                                 None, None, None, None]
    assert _utc(releases[3].at) == start + timedelta(minutes=39)
    assert [r.at for r in releases] == sorted((r.at for r in releases), reverse=True)
    assert releases_about(db.session, ada, limit=0)[1] == []


# 4. The log reads along indexes, never the whole table sorted.

def test_the_log_reads_along_indexes(app, shared):
    _sqlite_only(app)
    from portal.admin.shared import audit_log
    from portal.db import db
    found = []
    listener = _statements(db.engine, found)
    try:
        for kwargs in ({}, {"kind": "launch"}, {"person": db.session.merge(shared["ada"])}):
            found.clear()
            audit_log(db.session, shared["admin"].district_id, **kwargs)
            [(statement, params)] = [(s, p) for s, p in found if "ORDER BY" in s]
            plan = [row[-1] for row in db.session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                                               params)]
            # A step on the table goes along an index (or by row id), never through every row.
            steps = [step for step in plan if "audit_event" in step]
            assert steps and all(" USING " in step for step in steps), (kwargs, plan)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)


# 5. Found by the scale review (100,000 students, 5 million events): the log of one kind and an
# app's releases read millions of events.

def _plan(statement: str, params) -> list[str]:
    """The plan of a statement, as each database says it: SQLite's steps, or PostgreSQL's lines
    with sequential scans off (the tests' tables hold a few rows, which it would read whole
    whatever the indexes). The caller rolls back."""
    from portal.db import db
    conn = db.session.connection()
    if conn.dialect.name == "sqlite":
        return [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)]
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    return [row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, params)]


def _reads_no_whole_table(plan: list[str]) -> bool:
    return not any(step.startswith("SCAN audit_event") or "Seq Scan on audit_event" in step for step in plan)


def test_the_log_of_one_kind_reads_the_events_with_an_actor_and_about_no_one_along_their_indexes(app, shared):
    # /admin/log?kind=launch read every launch, through the kind's index, for its part "by the
    # district's people": launches, sign-ins and userinfo reads never have an actor (7.5 s on
    # SQLite, 2.1 s on PostgreSQL). That part reads the index of the events that have one; the
    # part "about no one" that of its few events (SQLite without statistics, as here, walked the
    # kind's events for it too).
    from portal.admin.shared import audit_log
    from portal.db import db
    found = []
    listener = _statements(db.engine, found)
    try:
        for kind in ("launch", "sign_in", "badge_issued"):
            found.clear()
            audit_log(db.session, shared["admin"].district_id, kind=kind)
            [(statement, params)] = [(s, p) for s, p in found if "ORDER BY" in s]
            plan = _plan(statement, params)
            db.session.rollback()
            for index in ("ix_audit_event_actor_kind_at", "ix_audit_event_no_one_kind_at"):
                assert any(index in step for step in plan), (kind, index, plan)
            assert _reads_no_whole_table(plan), (kind, plan)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)


def test_an_apps_latest_releases_are_read_along_the_apps_events(app, shared):
    # /admin/apps/<slug> of an app with few releases read the whole audit table for them (10.7 s
    # on SQLite), along the time index: app_id had none.
    from portal.admin.shared import releases_to_app
    from portal.db import db
    from portal.models import App
    saml = db.session.get(App, shared["saml"].id)
    found = []
    listener = _statements(db.engine, found)
    try:
        assert len(releases_to_app(db.session, shared["admin"].district_id, saml)) == 2
        [(statement, params)] = [(s, p) for s, p in found if "ORDER BY" in s]
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    plan = _plan(statement, params)
    db.session.rollback()
    assert any("ix_audit_event_app_at" in step for step in plan), plan
    assert _reads_no_whole_table(plan), plan
