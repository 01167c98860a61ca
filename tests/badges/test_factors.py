"""The second factor after a badge: PIN or three pictures in order, chosen at the first sign-in,
counted per badge, locked to teacher help."""
from __future__ import annotations

import re

from sqlalchemy import select

from portal.badges.policy import set_policy
from portal.db import db
from portal.models import BadgeFactor, Event
from tests.badges.conftest import csrf_from, issue, login, new_client, session_data, staff_post


def _csrf(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def _pin(browser, pin):
    page = browser.get("/badges/check")
    return browser.post("/badges/check", data={"pin": pin, "csrf_token": _csrf(page)})


def _pictures(browser, *names, start=None):
    """Press the picture buttons one after another, as a child would."""
    page = start or browser.get("/badges/check")
    for name in names:
        picked = re.findall(r'name="picked" value="(\w+)"', page.get_data(as_text=True))
        page = browser.post("/badges/check", data={"csrf_token": _csrf(page), "picked": picked,
                                                    "pick": name})
    return page


def _signed_in(browser) -> bool:
    return browser.get("/badges/home").status_code == 200


def test_pin_is_chosen_at_the_first_sign_in_then_required(redis_client, world, kiosk):
    token = issue(redis_client, world.older_student)
    first = kiosk.sign_in(token)
    assert first.headers["Location"] == "/badges/check"
    assert not _signed_in(kiosk.browser)
    assert "Choose a PIN" in kiosk.browser.get("/badges/check").get_data(as_text=True)
    assert _pin(kiosk.browser, "12").status_code == 400  # 4 to 6 numbers
    assert "Type your new PIN again" in _pin(kiosk.browser, "4821").get_data(as_text=True)
    assert _pin(kiosk.browser, "4821").headers["Location"] == "/badges/home"
    assert session_data(redis_client, kiosk.browser)["auth_method"] == "badge+pin"
    stored = db.session.get(BadgeFactor, world.older_student.id).pin_hash
    assert stored.startswith("$argon2id$") and "4821" not in stored

    kiosk.sign_in(token)
    assert not _signed_in(kiosk.browser)
    assert "Type your PIN" in kiosk.browser.get("/badges/check").get_data(as_text=True)
    assert _pin(kiosk.browser, "1111").status_code == 401
    assert _pin(kiosk.browser, "4821").headers["Location"] == "/badges/home"
    assert _signed_in(kiosk.browser)


def test_pin_confirmation_must_match(redis_client, world, kiosk):
    kiosk.sign_in(issue(redis_client, world.older_student))
    _pin(kiosk.browser, "4821")
    mismatch = _pin(kiosk.browser, "4822")
    assert mismatch.status_code == 400 and "Choose a PIN" in mismatch.get_data(as_text=True)
    assert db.session.get(BadgeFactor, world.older_student.id) is None


def test_picture_choice_order_matters(redis_client, world, kiosk):
    set_policy(db.session, world.school, second_factor_grades="01", factor="picture")
    token = issue(redis_client, world.student)
    kiosk.sign_in(token)
    page = kiosk.browser.get("/badges/check").get_data(as_text=True)
    assert "Pick three pictures you will remember" in page
    assert page.count('class="picture"') == 12 and "<svg" in page and ">Cat</span>" in page
    _pictures(kiosk.browser, "cat", "boat", "star")
    done = _pictures(kiosk.browser, "cat", "boat", "star")
    assert done.headers["Location"] == "/badges/home"
    assert session_data(redis_client, kiosk.browser)["auth_method"] == "badge+picture"

    kiosk.sign_in(token)
    wrong = _pictures(kiosk.browser, "boat", "cat", "star")
    assert wrong.status_code == 401 and not _signed_in(kiosk.browser)
    right = _pictures(kiosk.browser, "cat", "boat", "star")
    assert right.headers["Location"] == "/badges/home"
    assert _signed_in(kiosk.browser)


def test_picture_choice_can_start_again(redis_client, world, kiosk):
    set_policy(db.session, world.school, second_factor_grades="01", factor="picture")
    kiosk.sign_in(issue(redis_client, world.student))
    page = _pictures(kiosk.browser, "sun", "moon")
    assert "2 of 3 picked" in page.get_data(as_text=True)
    restarted = kiosk.browser.post("/badges/check", data={"csrf_token": _csrf(page),
                                                          "picked": ["sun", "moon"], "restart": "1"})
    assert "0 of 3 picked" in restarted.get_data(as_text=True)


def test_second_factor_locks_to_teacher_help_and_teacher_unlocks(app, redis_client, world, kiosk):
    token = issue(redis_client, world.older_student)
    kiosk.sign_in(token)
    _pin(kiosk.browser, "4821")
    _pin(kiosk.browser, "4821")
    kiosk.sign_in(token)
    answers = [_pin(kiosk.browser, "0000").status_code for _ in range(4)]
    assert answers == [401] * 4
    locked = _pin(kiosk.browser, "0000")
    assert locked.headers["Location"] == "/badges/locked"
    assert db.session.scalar(select(Event).where(Event.kind == "badge_factor_locked"))

    # Locked: even the right PIN, even after a new scan, leads to the teacher.
    assert kiosk.sign_in(token).headers["Location"] == "/badges/locked"
    assert "teacher" in kiosk.browser.get("/badges/locked").get_data(as_text=True)
    assert not _signed_in(kiosk.browser)

    stranger = new_client(app)
    csrf = login(stranger, "t.five")
    assert staff_post(stranger, csrf, f"/badges/students/{world.older_student.id}/unlock").status_code == 403
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    assert teacher.get(f"/badges/students/{world.older_student.id}").json["locked"] is True
    assert staff_post(teacher, csrf, f"/badges/students/{world.older_student.id}/unlock").status_code == 200

    assert kiosk.sign_in(token).headers["Location"] == "/badges/check"
    assert _pin(kiosk.browser, "4821").headers["Location"] == "/badges/home"


def test_teacher_reset_lets_the_student_choose_a_new_pin(app, redis_client, world, kiosk):
    token = issue(redis_client, world.older_student)
    kiosk.sign_in(token)
    _pin(kiosk.browser, "4821")
    _pin(kiosk.browser, "4821")
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    assert staff_post(teacher, csrf, f"/badges/students/{world.older_student.id}/reset-factor").status_code == 200
    kiosk.sign_in(token)
    assert "Choose a PIN" in kiosk.browser.get("/badges/check").get_data(as_text=True)


def test_second_factor_step_expires_with_the_badge(redis_client, world, kiosk):
    from portal.badges.services import void_badges_for_person
    kiosk.sign_in(issue(redis_client, world.older_student))
    void_badges_for_person(db.session, redis_client, world.older_student)
    assert kiosk.browser.get("/badges/check").status_code == 403


def test_second_factor_page_needs_a_scan_first(client):
    assert client.get("/badges/check").status_code == 403


def test_cli_unlocks_a_student(runner, redis_client, world, kiosk):
    token = issue(redis_client, world.older_student)
    kiosk.sign_in(token)
    _pin(kiosk.browser, "4821")
    _pin(kiosk.browser, "4821")
    kiosk.sign_in(token)
    for _ in range(5):
        _pin(kiosk.browser, "0000")
    result = runner.invoke(args=["badges", "unlock", "katherine"])
    assert result.exit_code == 0, result.output
    kiosk.sign_in(token)
    assert _pin(kiosk.browser, "4821").headers["Location"] == "/badges/home"


def test_destination_waits_for_the_second_factor(redis_client, world, kiosk):
    token = issue(redis_client, world.older_student)
    kiosk.sign_in(token)
    _pin(kiosk.browser, "4821")
    _pin(kiosk.browser, "4821")
    kiosk.browser.post("/logout", data={"csrf_token": csrf_from(kiosk.browser, "/badges/home")})
    kiosk.browser.get("/login?next=/saml/resume")
    assert kiosk.sign_in(token).headers["Location"] == "/badges/check"
    assert _pin(kiosk.browser, "4821").headers["Location"] == "/saml/resume"
