"""Badge work over many students: voiding a school's (or the roster's disabled students') badges
writes its audit events in one statement, however many badges."""
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
