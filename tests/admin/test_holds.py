"""Security holds (portal.admin.holds): a district admin stops one account at once, from the
person's page or `portal users hold`; sessions end, the password and badges stop working, no app
opens or reads their data, the roster import does not lift it, and lifting it restores all."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from portal.db import db
from portal.models import Event, Person
from tests.admin.helpers import cli, refused
from tests.badges.conftest import csrf_from, issue, kiosk, login, new_client, session_data, world  # noqa: F401
from tests.sso.test_oidc_support import exchange, get_code, oidc_world  # noqa: F401  (a fixture)


def _text(response) -> str:
    import html
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))))


def _admin(app, world):
    admin = new_client(app)
    login(admin, world.district_admin.username)
    return admin


def _hold(admin, person, reason=""):
    token = csrf_from(admin, f"/admin/people?username={person.username}")
    return admin.post(f"/admin/people/{person.id}/hold", data={"reason": reason, "csrf_token": token})


def _unhold(admin, person):
    token = csrf_from(admin, f"/admin/people?username={person.username}")
    return admin.post(f"/admin/people/{person.id}/unhold", data={"csrf_token": token})


def _held(app, person) -> bool:
    with app.app_context():
        return db.session.get(Person, person.id).held_at is not None


def _kinds(app):
    with app.app_context():
        return [e.kind for e in db.session.query(Event).order_by(Event.id) if e.kind.startswith("hold_")]


def test_a_hold_ends_sessions_and_stops_password_and_badge(app, redis_client, world, kiosk):
    student = new_client(app)
    login(student, "ada")
    badge = issue(redis_client, world.student)
    admin = _admin(app, world)
    answer = _hold(admin, world.student, "  badge lost on the bus ")
    assert answer.status_code == 303
    page = _text(admin.get(answer.headers["Location"]))
    assert "account is on hold" in page and "1 session ended" in page
    assert "On hold since" in page and "badge lost on the bus" in page
    assert "Accounts on hold Ada Lovelace (ada), since" in _text(admin.get("/admin/"))
    assert session_data(redis_client, student) is None
    assert student.get("/").status_code == 302                     # back to the sign-in page

    fresh = new_client(app)
    token = csrf_from(fresh, "/login")
    refused_login = fresh.post("/login", data={"username": "ada", "password": "correct horse battery",
                                               "csrf_token": token})
    assert refused_login.status_code == 403 and "This account is on hold" in _text(refused_login)
    wrong = fresh.post("/login", data={"username": "ada", "password": "not it", "csrf_token": token})
    assert wrong.status_code == 401 and "on hold" not in _text(wrong)   # a stranger learns nothing
    assert kiosk.scan(badge).status_code == 403
    assert _kinds(app) == ["hold_placed"]

    # The teacher sees why the student cannot sign in.
    teacher = new_client(app)
    login(teacher, "t.four")
    assert "on hold" in _text(teacher.get(f"/teacher/sections/{world.section.id}"))

    lifted = _unhold(admin, world.student)
    assert "The hold on Ada Lovelace's account is lifted" in _text(admin.get(lifted.headers["Location"]))
    assert kiosk.scan(badge).status_code == 200
    login(new_client(app), "ada")
    assert _kinds(app) == ["hold_placed", "hold_lifted"]
    assert "Accounts on hold" not in _text(admin.get("/admin/"))
    assert "account put on hold" in _text(admin.get("/admin/log"))


def test_a_session_the_hold_could_not_end_is_refused_anyway(app, redis_client, world):
    student = new_client(app)
    login(student, "ada")
    # As if Redis had been down when the hold was placed: the stored session is still there.
    with app.app_context():
        person = db.session.get(Person, world.student.id)
        person.held_at = datetime.now(timezone.utc)
        db.session.commit()
    assert session_data(redis_client, student) is not None
    assert student.get("/").status_code == 302


def test_a_hold_stops_codes_and_tokens_issued_before(app, client, auth, oidc_world, runner):
    auth.login()
    code, verifier, _ = get_code(client, oidc_world)
    early_code, early_verifier, _ = get_code(client, oidc_world)
    bearer = {"Authorization": f"Bearer {exchange(client, oidc_world, code, verifier).json['access_token']}"}
    assert client.get("/oidc/userinfo", headers=bearer).status_code == 200
    assert "is on hold" in cli(runner, "users", "hold", oidc_world.student.username, "--reason", "shared password")
    assert client.get("/oidc/userinfo", headers=bearer).status_code == 401
    late = exchange(client, oidc_world, early_code, early_verifier)
    assert late.status_code == 400 and "id_token" not in late.json
    assert "may sign in again" in cli(runner, "users", "unhold", oidc_world.student.username)


@pytest.mark.parametrize("reason, words", [("x" * 201, "longer than 200"), ("ring\x07", "invisible"),
                                           ("rtl\u202e", "invisible")])
def test_a_bad_reason_changes_nothing(app, world, reason, words):
    admin = _admin(app, world)
    answer = _hold(admin, world.student, reason)
    assert words in _text(admin.get(answer.headers["Location"]))
    assert not _held(app, world.student) and _kinds(app) == []


def test_holds_are_refused_in_words(app, world):
    admin = _admin(app, world)
    me = _hold(admin, world.district_admin)
    assert "cannot put your own account on hold" in _text(admin.get(me.headers["Location"]))
    not_held = _unhold(admin, world.student)
    assert "Ada is not on hold" in _text(admin.get(not_held.headers["Location"]))
    _hold(admin, world.student)
    twice = _hold(admin, world.student)
    assert "has been on hold since" in _text(admin.get(twice.headers["Location"]))
    assert _kinds(app) == ["hold_placed"]


def test_only_this_districts_admins_place_holds(app, world, roster):
    from portal.models import District, Role
    other = District(sourced_id="far", name="Far District")
    db.session.add(other)
    db.session.flush()
    far_admin = roster.person("far.admin", role=Role.district_admin)
    far_admin.district_id = other.id
    db.session.commit()
    far = new_client(app)
    login(far, "far.admin")
    token = csrf_from(far, "/admin/")
    for path in ("hold", "unhold"):
        assert far.post(f"/admin/people/{world.student.id}/{path}", data={"csrf_token": token}).status_code == 404
    for username in ("t.four", "principal", "ada"):
        client = new_client(app)
        login(client, username)
        token = csrf_from(client, "/")
        assert client.post(f"/admin/people/{world.student.id}/hold", data={"csrf_token": token}).status_code == 403
    assert not _held(app, world.student)


def test_the_command_line_refuses_in_one_line(app, world, runner):
    assert "no user called" in refused(runner, "users", "hold", "nobody")
    assert "not on hold" in refused(runner, "users", "unhold", "ada")
    assert "longer than 200" in refused(runner, "users", "hold", "ada", "--reason", "x" * 300)
    cli(runner, "users", "hold", "ada")
    assert "on hold since" in refused(runner, "users", "hold", "ada")


def test_two_admins_placing_a_hold_at_once_place_it_once(app, redis_client, world):
    # Both found the account not held; the second replaced the first's reason and was recorded again.
    from portal.admin.holds import place_hold
    from portal.admin.services import AdminError
    now = datetime.now(timezone.utc)
    with app.app_context():                              # the first admin's request
        seen_free = db.session.get(Person, world.student.id)
        with app.app_context():                          # the second's, at the same moment
            place_hold(db.session, redis_client, db.session.get(Person, world.student.id), actor=None,
                       reason="badge lost", now=now)
        with pytest.raises(AdminError, match="^ada has been on hold since "):
            place_hold(db.session, redis_client, seen_free, actor=None, reason="password out", now=now)
    with app.app_context():
        assert db.session.get(Person, world.student.id).hold_reason == "badge lost"
    assert _kinds(app) == ["hold_placed"]


def test_two_admins_lifting_a_hold_at_once_lift_it_once(app, redis_client, world):
    # Both found the account held; both set it free and both were recorded as lifting it.
    from portal.admin.holds import lift_hold, place_hold
    from portal.admin.services import AdminError
    with app.app_context():
        place_hold(db.session, redis_client, db.session.get(Person, world.student.id), actor=None,
                   reason="badge lost", now=datetime.now(timezone.utc))
    with app.app_context():                              # the first admin's request
        seen_held = db.session.get(Person, world.student.id)
        with app.app_context():                          # the second's, at the same moment
            lift_hold(db.session, redis_client, db.session.get(Person, world.student.id), actor=None)
        with pytest.raises(AdminError, match="^ada is not on hold$"):
            lift_hold(db.session, redis_client, seen_held, actor=None)
    assert not _held(app, world.student)
    assert _kinds(app) == ["hold_placed", "hold_lifted"]


def test_already_on_hold_says_the_districts_day(app, settings, redis_client, world, runner):
    # Placed at 20:00 in Chicago on Mar 3: the person's page said Mar 3, the refusal Mar 4 (UTC's).
    from dataclasses import replace

    from portal.admin.holds import place_hold
    app.config["SETTINGS"] = replace(settings, timezone="America/Chicago")
    with app.app_context():
        place_hold(db.session, redis_client, db.session.get(Person, world.student.id), actor=None,
                   reason="badge lost", now=datetime(2026, 3, 4, 2, 0, tzinfo=timezone.utc))
    admin = _admin(app, world)
    page = _text(admin.get(_hold(admin, world.student).headers["Location"]))
    assert "has been on hold since Mar 3, 2026" in page and "On hold since Mar 3, 2026 20:00 CST" in page
    assert refused(runner, "users", "hold", "ada").endswith("on hold since Mar 3, 2026")
