"""Voiding, revoking, pairing and unlocking while Redis (the session store) cannot be reached: the
command says so in one line and changes nothing; the page is the 503 and changes nothing. Should
Redis go between the database's commit and the sessions' end, both say what was done and what not."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import redis
from sqlalchemy import select

from portal.db import db
from portal.devserver import free_port
from portal.models import Badge, BadgeFactor, Event, KioskDevice
from tests.badges.conftest import issue, login, new_client, session_data, staff_post

REDIS_DOWN = "Error: Redis (the session store) cannot be reached; start it and try again. Nothing changed"


@pytest.fixture
def redis_away(app, redis_client):
    """Point the app at a Redis nothing answers on, for what the test runs inside it."""
    class Away:
        def __enter__(self):
            app.extensions["redis"] = redis.Redis(host="127.0.0.1", port=free_port(),
                                                  socket_connect_timeout=1)

        def __exit__(self, *exc):
            app.extensions["redis"] = redis_client
    return Away()


def _locked(student) -> BadgeFactor:
    row = BadgeFactor(person_id=student.id, pin_hash="x", wrong_tries=5,
                      locked_at=datetime.now(timezone.utc), updated_at=datetime.now(timezone.utc))
    db.session.add(row)
    db.session.commit()
    return row


def _events(kind: str) -> list:
    return list(db.session.scalars(select(Event).where(Event.kind == kind)))


def test_void_without_redis_changes_nothing_and_a_rerun_ends_the_sessions(runner, redis_client, world,
                                                                          kiosk, redis_away):
    token = issue(redis_client, world.student)
    kiosk.sign_in(token)
    assert session_data(redis_client, kiosk.browser) is not None
    with redis_away:
        result = runner.invoke(args=["badges", "void", "--student", "ada"])
    assert result.exit_code == 1 and result.exception.__class__ is SystemExit
    assert result.output.strip() == REDIS_DOWN
    db.session.expire_all()
    assert db.session.scalar(select(Badge).where(Badge.person_id == world.student.id)).revoked_at is None
    assert _events("badge_voided") == []
    # Once Redis is back, the same command does the whole of it.
    result = runner.invoke(args=["badges", "void", "--student", "ada"])
    assert result.output.strip() == "voided the badges of 1 student"
    assert session_data(redis_client, kiosk.browser) is None


def test_revoke_without_redis_changes_nothing(runner, redis_client, world, kiosk, redis_away):
    with redis_away:
        result = runner.invoke(args=["kiosk", "revoke", str(kiosk.device_id)])
    assert result.exit_code == 1 and result.exception.__class__ is SystemExit
    assert result.output.strip() == REDIS_DOWN
    db.session.expire_all()
    assert db.session.get(KioskDevice, kiosk.device_id).revoked_at is None
    assert _events("kiosk_revoked") == []


@pytest.mark.parametrize("args", [["kiosk", "pair", "maple"], ["badges", "unlock", "katherine"],
                                  ["badges", "unlock", "katherine", "--reset"]])
def test_pair_and_unlock_without_redis_are_one_line(runner, world, redis_away, args):
    _locked(world.older_student)
    with redis_away:
        result = runner.invoke(args=args)
    assert result.exit_code == 1 and result.exception.__class__ is SystemExit
    assert result.output.strip() == REDIS_DOWN
    db.session.expire_all()
    row = db.session.get(BadgeFactor, world.older_student.id)
    assert row is not None and row.locked_at is not None and row.wrong_tries == 5


def test_void_whose_sessions_could_not_end_says_what_was_done(runner, redis_client, world, kiosk,
                                                              monkeypatch):
    from portal.badges import services

    def gone(*args):
        raise redis.ConnectionError("gone")
    issue(redis_client, world.student)
    monkeypatch.setattr(services, "end_sessions_of_revoked", gone)
    result = runner.invoke(args=["badges", "void", "--student", "ada"])
    assert result.exit_code == 1 and result.exception.__class__ is SystemExit
    assert result.output.strip().splitlines() == [
        "Error: voided the badges of 1 student, but Redis went away before their badge sessions "
        "ended: a session begun with one lasts until it times out"]


def test_revoke_whose_session_could_not_end_says_to_run_it_again(runner, redis_client, world, kiosk,
                                                                 monkeypatch):
    from portal.badges import kiosks
    kiosk.sign_in(issue(redis_client, world.student))
    real = kiosks.end_device_session

    def gone(*args):
        raise redis.ConnectionError("gone")
    monkeypatch.setattr(kiosks, "end_device_session", gone)
    result = runner.invoke(args=["kiosk", "revoke", str(kiosk.device_id)])
    assert result.exit_code == 1 and result.exception.__class__ is SystemExit
    name = db.session.get(KioskDevice, kiosk.device_id).name
    assert result.output.strip().splitlines() == [
        f"Error: revoked {kiosk.device_id} ({name}), but Redis went away before the session open "
        f"on it ended: run `portal kiosk revoke {kiosk.device_id}` again once Redis is back"]
    monkeypatch.setattr(kiosks, "end_device_session", real)
    assert session_data(redis_client, kiosk.browser) is not None
    assert runner.invoke(args=["kiosk", "revoke", str(kiosk.device_id)]).exit_code == 0
    assert session_data(redis_client, kiosk.browser) is None


# --- the pages: Redis going away after the staff member's session was read ---

def _ping_fails(monkeypatch, redis_client):
    def ping(*args, **kwargs):
        raise redis.ConnectionError("gone")
    monkeypatch.setattr(redis_client, "ping", ping)


def test_void_page_without_redis_is_the_503_and_voids_nothing(app, redis_client, world, kiosk,
                                                              monkeypatch):
    issue(redis_client, world.student)
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    _ping_fails(monkeypatch, redis_client)
    answer = staff_post(teacher, csrf, f"/badges/students/{world.student.id}/void")
    assert answer.status_code == 503
    assert answer.json["error"] == "Sign-in is unavailable"
    db.session.expire_all()
    assert db.session.scalar(select(Badge).where(Badge.person_id == world.student.id)).revoked_at is None


def test_revoke_page_without_redis_is_the_503_and_revokes_nothing(app, redis_client, world, kiosk,
                                                                  monkeypatch):
    principal = new_client(app)
    csrf = login(principal, "principal")
    _ping_fails(monkeypatch, redis_client)
    answer = staff_post(principal, csrf, f"/kiosk/devices/{kiosk.device_id}/revoke")
    assert answer.status_code == 503
    db.session.expire_all()
    assert db.session.get(KioskDevice, kiosk.device_id).revoked_at is None


def test_void_page_whose_sessions_could_not_end_says_so(app, redis_client, world, monkeypatch):
    from portal.badges import services

    def gone(*args):
        raise redis.ConnectionError("gone")
    issue(redis_client, world.student)
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    monkeypatch.setattr(services, "end_sessions_of_revoked", gone)
    answer = staff_post(teacher, csrf, f"/badges/students/{world.student.id}/void")
    assert answer.status_code == 503
    assert answer.json["error"] == "The badges no longer work, but a session begun with one was not ended"


@pytest.mark.parametrize("help", ["unlock", "reset-factor"])
def test_unlock_page_without_redis_is_the_503_and_unlocks_nothing(app, redis_client, world, monkeypatch,
                                                                  help):
    from portal.ratelimit import RateLimiter
    _locked(world.older_student)
    teacher = new_client(app)
    csrf = login(teacher, "t.four")

    def gone(*args):
        raise redis.ConnectionError("gone")
    monkeypatch.setattr(RateLimiter, "clear", gone)
    answer = staff_post(teacher, csrf, f"/badges/students/{world.older_student.id}/{help}")
    assert answer.status_code == 503
    db.session.expire_all()
    row = db.session.get(BadgeFactor, world.older_student.id)
    assert row is not None and row.locked_at is not None
