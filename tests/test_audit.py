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


def _old_and_kept(ada, deletable: int) -> None:
    """`deletable` sign-ins a purge of 180 days deletes, and what it keeps: Ada's launches of
    long ago (release records) and a recent sign-in."""
    for n in range(deletable):
        _event("sign_in", 400 + n, ada)
    for n in range(3):
        _event("launch", 400 + n, ada)
    _event("sign_in", 10, ada)
    db.session.commit()


def _count(conn, kind, older: bool) -> int:
    from sqlalchemy import func
    since = datetime.now(timezone.utc) - timedelta(days=180)
    return conn.execute(select(func.count()).select_from(Event).where(
        Event.kind == kind, Event.at < since if older else Event.at >= since)).scalar()


def test_a_purge_deletes_in_batches_each_committed_and_others_write_between_them(app, roster, monkeypatch):
    # Found by the scale review: one DELETE of 666,000 events held SQLite's write lock for over
    # 20 s, and every sign-in and launch meanwhile failed to record its event ("database is
    # locked"). Another connection, between the batches: it sees each one's events gone, and
    # writes an event without waiting (on SQLite, with no busy timeout at all).
    from sqlalchemy import create_engine, event, text

    from portal import audit
    monkeypatch.setattr(audit, "PURGE_BATCH", 10)
    ada = roster.person("ada.lovelace")
    _old_and_kept(ada, 25)
    ada_id = ada.id
    other = create_engine(app.config["SETTINGS"].database_url)
    seen = []

    def between(_session):
        with other.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.execute(text("PRAGMA busy_timeout = 0"))
            seen.append(_count(conn, "sign_in", older=True))
            conn.execute(Event.__table__.insert(), {"at": datetime.now(timezone.utc), "kind": "sign_in",
                                                     "person_id": ada_id, "data": {}})
    event.listen(db.session, "after_commit", between)
    try:
        assert audit.purge_older_than(180) == 25
    finally:
        event.remove(db.session, "after_commit", between)
        other.dispose()
    assert seen == [15, 5, 0]
    with db.engine.connect() as conn:
        assert _count(conn, "launch", older=True) == 3           # release records are never purged
        assert _count(conn, "sign_in", older=False) == 1 + 3     # the recent one and the other's


def test_a_purge_stopped_part_way_keeps_whole_batches_gone_and_finishes_when_run_again(app, roster, runner,
                                                                                       monkeypatch):
    from portal import audit
    monkeypatch.setattr(audit, "PURGE_BATCH", 10)
    ada = roster.person("ada.lovelace")
    _old_and_kept(ada, 25)

    class Stopped(Exception):
        pass

    def stop(so_far):
        assert so_far == 10
        raise Stopped      # as a ^C, or a lost connection, after the first batch
    with pytest.raises(Stopped):
        audit.purge_older_than(180, progress=stop)
    db.session.rollback()
    with db.engine.connect() as conn:
        assert (_count(conn, "sign_in", older=True), _count(conn, "launch", older=True)) == (15, 3)
    result = runner.invoke(args=["audit", "purge", "--older-than", "180"])
    assert result.output.startswith("deleted 15 audit events older than 180 days;"), result.output
    with db.engine.connect() as conn:
        assert [_count(conn, "sign_in", older=True), _count(conn, "launch", older=True),
                _count(conn, "sign_in", older=False)] == [0, 3, 1]
