"""Keeping the audit log short: `portal audit purge` deletes old events but never the records of
what an app received about a person still on the roster."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from portal.db import db
from portal.models import Event


def _event(kind, days_ago, person=None):
    db.session.add(Event(at=datetime.now(timezone.utc) - timedelta(days=days_ago), kind=kind,
                         person_id=person.id if person else None, data={}))


def test_purge_keeps_release_records_and_recent_events(app, roster, runner):
    ada = roster.person("ada.lovelace")
    _event("sign_in", 400, ada)
    _event("badge_issued", 200, ada)
    _event("app_granted", 500)
    _event("launch", 900, ada)       # what an app received: kept while Ada is on the roster
    _event("sign_in", 10, ada)
    db.session.commit()
    result = runner.invoke(args=["audit", "purge", "--older-than", "180"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("deleted 3 audit events older than 180 days;")
    db.session.expire_all()
    assert sorted(db.session.scalars(select(Event.kind))) == ["launch", "sign_in"]
    again = runner.invoke(args=["audit", "purge", "--older-than", "180"])
    assert again.output.startswith("deleted 0 audit events")


@pytest.mark.parametrize("args", [[], ["--older-than", "0"], ["--older-than", "-5"], ["--older-than", "soon"],
                                  ["--older-than", "99999999999999999999"]])
def test_purge_refuses_a_bad_age_and_deletes_nothing(app, roster, runner, args):
    ada = roster.person("ada.lovelace")
    _event("sign_in", 400, ada)
    db.session.commit()
    result = runner.invoke(args=["audit", "purge", *args])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert db.session.scalar(select(Event.id)) is not None


def test_an_event_keeps_the_name_of_whoever_did_it(app, roster):
    # The log names them after the roster removes them (their actor_id is then NULL).
    from portal import audit
    ada = roster.person("ada.lovelace")
    teacher = roster.person("tess.teacher", given="Tess", family="Teach")
    teacher.preferred_name = "Tessa"
    audit.record("password_set", person=ada, actor=teacher)
    audit.record("sign_in", person=ada)
    db.session.expire_all()
    assert dict(db.session.execute(select(Event.kind, Event.actor_name)).all()) == {
        "password_set": "Tessa Teach (tess.teacher)", "sign_in": None}


def test_times_about_a_person_come_back_in_utc_whatever_the_database_zone(app, roster):
    # SQLite handed these back without their zone (the JSON of /badges/reuse had no offset),
    # PostgreSQL in its session's zone: every one is an aware UTC datetime, like a badge's.
    from sqlalchemy import text

    from portal.models import App, AppKind, AppOptOut, Person
    ada = roster.person("ada.lovelace")
    app_row = App(slug="library", name="Library", kind=AppKind.link, url="https://l.example/")
    db.session.add(app_row)
    db.session.flush()
    moment = datetime(2026, 3, 4, 2, 0, tzinfo=timezone.utc)
    ada.held_at = ada.password_changed_at = moment
    db.session.add(AppOptOut(person_id=ada.id, app_id=app_row.id, at=moment))
    db.session.add(Event(at=moment, kind="hold_placed", person_id=ada.id, data={}))
    db.session.commit()
    db.session.expire_all()
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL TIME ZONE 'Asia/Tokyo'"))     # this transaction only
    person = db.session.get(Person, ada.id)
    read = [person.held_at, person.password_changed_at, db.session.scalar(select(AppOptOut.at)),
            db.session.scalar(select(Event.at).where(Event.kind == "hold_placed"))]
    db.session.rollback()
    assert read == [moment] * 4
    assert all(value.utcoffset() == timedelta(0) for value in read), read
