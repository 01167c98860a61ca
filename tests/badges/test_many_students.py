"""Badge work over many students: voiding a school's (or the roster's disabled students') badges
writes its audit events in one statement, however many badges; a district admin's scans of
voided badges are found from the scans (rare), not from every student of the district."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from portal import audit
from portal.db import db
from portal.models import Badge, BadgeKind, Event, Person
from tests.statements import statements

NOW = datetime.now(timezone.utc)


def _students_with_cards(roster, world, n, *, first=0) -> list[int]:
    """`n` more students of Room 4, each with a working card at Maple."""
    ids = []
    for i in range(first, first + n):
        kid = roster.person(f"kid{i:03d}", schools=[world.school], sections=[world.section], grades="01",
                            password=None)
        db.session.add(Badge(person_id=kid.id, school_id=world.school.id, token_hash=f"{i:064d}",
                             kind=BadgeKind.permanent, issued_at=NOW, expires_at=NOW + timedelta(days=200)))
        ids.append(kid.id)
    db.session.commit()
    return ids


def _voided(kind="badge_voided") -> dict[int, tuple]:
    return {e.data["badge_id"]: (e.person_id, e.actor_id, e.actor_name, e.data["reason"])
            for e in db.session.scalars(select(Event).where(Event.kind == kind))}


def test_voiding_a_school_writes_as_many_statements_for_5_or_50_badges(app, world, roster, redis_client):
    from portal.badges.services import void_badges_for_school
    admin = db.session.get(Person, world.district_admin.id)
    counts = []
    for n, first in ((5, 0), (50, 5)):
        ids = _students_with_cards(roster, world, n, first=first)
        with statements(db.engine) as found:
            assert void_badges_for_school(db.session, redis_client, world.school, actor=admin) == n
        counts.append(len(found))
        # One event per badge, about its student, by the admin, with the reason.
        badges = dict(db.session.execute(select(Badge.id, Badge.person_id).where(Badge.person_id.in_(ids))).all())
        events = _voided()
        assert {badge_id: events[badge_id] for badge_id in badges} == {
            badge_id: (person_id, admin.id, "Dee District (district)", "school voided")
            for badge_id, person_id in badges.items()}
        db.session.execute(Event.__table__.delete())
        db.session.commit()
    assert counts[0] == counts[1], counts        # was 2 per badge (load the owner, one INSERT)


def test_the_roster_revoking_5_or_50_students_badges_writes_as_many_statements(app, world, roster):
    from portal.badges.services import revoke_badges_for_people
    counts = []
    for n, first in ((5, 0), (50, 5)):
        ids = _students_with_cards(roster, world, n, first=first)
        with statements(db.engine) as found:
            revoked = revoke_badges_for_people(db.session, ids, "roster: disabled or not a student")
        db.session.commit()
        counts.append(len(found))
        assert sorted(person_id for _, person_id in revoked) == sorted(ids)
        assert {v[0] for v in _voided().values()} == set(ids)
        assert {v[1:] for v in _voided().values()} == {(None, None, "roster: disabled or not a student")}
        db.session.execute(Event.__table__.delete())
        db.session.commit()
    assert counts[0] == counts[1], counts


def test_a_batch_of_events_is_checked_as_one_is(app, world):
    # Every row's data checked before any is written: nothing is recorded.
    ada, alan = world.student, world.classmate
    with pytest.raises(ValueError, match="token"):
        audit.record_many("badge_voided", [(ada.id, {"badge_id": 1}), (alan.id, {"Token": "x"})], commit=False)
    db.session.rollback()
    assert db.session.scalar(select(Event.id)) is None
    assert audit.record_many("badge_voided", [], commit=True) == 0
    assert audit.record_many("badge_voided", [(ada.id, {"badge_id": 1}), (None, None)],
                             actor=world.teacher) == 2
    assert sorted(db.session.execute(select(Event.person_id, Event.actor_id, Event.data)).all(),
                  key=lambda r: r[0] or 0) == [(None, world.teacher.id, {}),
                                               (ada.id, world.teacher.id, {"badge_id": 1})]


def _reuse(person, school):
    audit.record("badge_voided_reuse", person=person, commit=False, data={
        "badge_id": 1, "device_id": None, "via": "browser", "school_id": school.id})


# SQLite's statistics (ANALYZE) of a district of 100,000 students and 5 million events, as the scale
# review measured: with them its planner chooses as it does there, not as in a test's few rows.
DISTRICT_STATISTICS = [
    ("person", "ix_person_district_id", "105304 105304"),
    ("person", "sqlite_autoindex_person_1", "105304 1"),
    ("person", "sqlite_autoindex_person_2", "105304 1"),
    ("audit_event", "ix_audit_event_removed_actor", "100 100 1"),
    ("audit_event", "ix_audit_event_at", "5000245 1"),
    ("audit_event", "ix_audit_event_actor_at", "5000245 980 1"),
    ("audit_event", "ix_audit_event_person_at", "5000245 51 1"),
    ("audit_event", "ix_audit_event_kind_at", "5000245 714321 1"),
    ("school", "sqlite_autoindex_school_1", "200 1"),
    ("person_school", "ix_person_school_school", "105303 527"),
    ("person_school", "sqlite_autoindex_person_school_1", "105303 1 1"),
]


@pytest.fixture
def district_statistics(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the plan read is SQLite's (PostgreSQL chooses by statistics of its own)")
    conn = db.session.connection()
    conn.exec_driver_sql("ANALYZE")                 # makes sqlite_stat1
    conn.exec_driver_sql("DELETE FROM sqlite_stat1")
    conn.exec_driver_sql("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", DISTRICT_STATISTICS)
    conn.exec_driver_sql("ANALYZE sqlite_schema")   # read again by the planner
    db.session.commit()
    yield
    db.session.rollback()
    db.session.connection().exec_driver_sql("DROP TABLE sqlite_stat1")   # every connection reads the schema again
    db.session.commit()


def test_a_district_admins_scans_of_voided_badges_are_read_from_the_scans(app, world, roster, district_statistics):
    from sqlalchemy import event

    from portal.models import District
    from portal.teacher.classes import recent_reuse
    _students_with_cards(roster, world, 30)
    other = District(sourced_id="d2", name="Far Away")
    db.session.add(other)
    db.session.flush()
    stranger = roster.person("stranger", grades="01")
    stranger.district_id = other.id
    for person in (world.student, world.far_student, world.teacher, stranger):
        _reuse(person, world.school)
    db.session.commit()
    admin = db.session.get(Person, world.district_admin.id)
    found = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if "audit_event" in statement:
            found.append((statement, parameters))
    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        alerts = recent_reuse(db.session, admin, NOW - timedelta(days=1))
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)
    # The district's students only: not a teacher's, nor another district's student's.
    assert {a.student.id for a in alerts} == {world.student.id, world.far_student.id}
    statement, parameters = found[0]
    plan = [row[-1] for row in db.session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                                       parameters)]
    steps = [step for step in plan if "audit_event" in step]
    # From the scans of the period, along (kind, at); never each student's events one by one.
    assert steps and "ix_audit_event_kind_at" in steps[0] and not any("person_at" in s for s in steps), plan
