"""The second factor after a badge: PIN or three pictures in order, chosen at the first sign-in;
wrong tries in a row are counted per student and lock to teacher help."""
from __future__ import annotations

import dataclasses
import itertools
import re
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.badges.factors import FactorLocked, WrongFactor, check_factor, hash_factor, set_factor
from portal.badges.policy import set_policy
from portal.db import db
from portal.models import BadgeFactor, Event, FactorKind, Person
from portal.ratelimit import RateLimiter
from tests.badges.conftest import csrf_from, issue, login, new_client, past_claim, session_data, staff_post


KEY = b"k" * 32
_guesses = itertools.count(1000)


def _wrong() -> str:
    """A wrong PIN not tried before: the same wrong one again at once is a double press, one try."""
    return f"{next(_guesses):04d}"


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
    # Chosen, not checked: only the badge proved who this is (amr and AuthnContext say so).
    assert session_data(redis_client, kiosk.browser)["auth_method"] == "badge"
    stored = db.session.get(BadgeFactor, world.older_student.id).pin_hash
    assert stored.startswith("$argon2id$") and "4821" not in stored

    kiosk.sign_in(token)
    assert not _signed_in(kiosk.browser)
    assert "Type your PIN" in kiosk.browser.get("/badges/check").get_data(as_text=True)
    assert _pin(kiosk.browser, "1111").status_code == 401
    assert _pin(kiosk.browser, "4821").headers["Location"] == "/badges/home"
    assert _signed_in(kiosk.browser)
    assert session_data(redis_client, kiosk.browser)["auth_method"] == "badge+pin"


def test_a_pin_chosen_at_two_devices_at_once_keeps_the_first(redis_client, world):
    # Found by review: a second confirmation racing the first overwrote its PIN (or, at the
    # same instant, was a 500). The first stands; the second changes nothing and is told so.
    from portal.badges.factors import matches
    student = world.older_student
    first, second = (hash_factor(FactorKind.pin, pin) for pin in ("4821", "7777"))
    assert set_factor(db.session, student, FactorKind.pin, first) is True
    assert set_factor(db.session, student, FactorKind.pin, second) is False
    db.session.expire_all()
    assert matches(db.session.get(BadgeFactor, student.id).pin_hash, FactorKind.pin, "4821")
    assert len(db.session.scalars(select(Event).where(Event.kind == "badge_factor_set")).all()) == 1


def test_a_child_confirming_a_pin_chosen_meanwhile_elsewhere_is_asked_for_that_one(
        app, redis_client, world, kiosk):
    # The same badge at two devices, both choosing: the first to confirm wins. The other is told
    # so, and what it typed is not counted as a wrong try.
    from tests.badges.conftest import enroll_kiosk
    other = enroll_kiosk(app, redis_client, world.school)
    token = issue(redis_client, world.older_student)
    kiosk.sign_in(token)
    other.sign_in(token)
    _pin(kiosk.browser, "4821")
    _pin(other.browser, "7777")
    confirming = other.browser.get("/badges/check")
    assert "Type your new PIN again" in confirming.get_data(as_text=True)
    assert _pin(kiosk.browser, "4821").headers["Location"] == "/badges/home"
    late = other.browser.post("/badges/check", data={"pin": "7777", "csrf_token": _csrf(confirming)})
    assert late.status_code == 409 and "One was just chosen on another device" in late.get_data(as_text=True)
    assert db.session.get(BadgeFactor, world.older_student.id).wrong_tries == 0
    assert _pin(other.browser, "4821").headers["Location"] == "/badges/home"


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
    assert session_data(redis_client, kiosk.browser)["auth_method"] == "badge"

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
    answers = [_pin(kiosk.browser, _wrong()).status_code for _ in range(4)]
    assert answers == [401] * 4
    locked = _pin(kiosk.browser, _wrong())
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
        _pin(kiosk.browser, _wrong())
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
    assert past_claim(kiosk.browser, _pin(kiosk.browser, "4821").headers["Location"]) == "/saml/resume"


def _chosen_pin(redis_client, kiosk, person, pin="4821") -> str:
    """Issue a badge, scan it and choose the PIN; return the badge's token."""
    token = issue(redis_client, person)
    kiosk.sign_in(token)
    _pin(kiosk.browser, pin)
    _pin(kiosk.browser, pin)
    return token


def _wrong_tries(person) -> int:
    db.session.expire_all()
    return db.session.get(BadgeFactor, person.id).wrong_tries


@pytest.fixture
def one_second_window(app):
    """The moving window of wrong tries lasts a second, so a test can guess "slowly"."""
    app.config["SETTINGS"] = dataclasses.replace(app.config["SETTINGS"],
                                                 badge_factor_limit="5 per 1 second")
    app.extensions.pop("badge_limits", None)


def test_slow_guessing_still_locks_after_five_wrong_tries_in_a_row(redis_client, world, kiosk,
                                                                  one_second_window):
    token = _chosen_pin(redis_client, kiosk, world.older_student)
    kiosk.sign_in(token)
    assert [_pin(kiosk.browser, _wrong()).status_code for _ in range(4)] == [401] * 4
    time.sleep(1.2)  # the window has forgotten them; the count has not
    assert _pin(kiosk.browser, _wrong()).headers["Location"] == "/badges/locked"
    assert kiosk.sign_in(token).headers["Location"] == "/badges/locked"


def test_a_right_answer_starts_the_count_again(redis_client, world, kiosk):
    token = _chosen_pin(redis_client, kiosk, world.older_student)
    kiosk.sign_in(token)
    for _ in range(4):
        _pin(kiosk.browser, _wrong())
    assert _wrong_tries(world.older_student) == 4
    assert _pin(kiosk.browser, "4821").headers["Location"] == "/badges/home"
    assert _wrong_tries(world.older_student) == 0
    kiosk.sign_in(token)
    assert [_pin(kiosk.browser, _wrong()).status_code for _ in range(4)] == [401] * 4
    assert _pin(kiosk.browser, _wrong()).headers["Location"] == "/badges/locked"


def test_a_new_badge_does_not_start_the_count_again(redis_client, world, kiosk):
    token = _chosen_pin(redis_client, kiosk, world.older_student)
    kiosk.sign_in(token)
    assert [_pin(kiosk.browser, _wrong()).status_code for _ in range(3)] == [401] * 3
    new_card = issue(redis_client, world.older_student)  # replaces the card in the pocket
    assert kiosk.scan(token).status_code == 403
    kiosk.sign_in(new_card)
    assert _pin(kiosk.browser, _wrong()).status_code == 401
    assert _pin(kiosk.browser, _wrong()).headers["Location"] == "/badges/locked"


def _lock(kiosk, token) -> None:
    kiosk.sign_in(token)
    for _ in range(5):
        _pin(kiosk.browser, _wrong())
    assert kiosk.sign_in(token).headers["Location"] == "/badges/locked"


@pytest.mark.parametrize("help", ["unlock", "reset-factor"])
def test_teacher_help_unlocks_and_starts_the_count_again(app, redis_client, world, kiosk, help):
    token = _chosen_pin(redis_client, kiosk, world.older_student)
    _lock(kiosk, token)
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    assert staff_post(teacher, csrf, f"/badges/students/{world.older_student.id}/{help}").status_code == 200
    kiosk.sign_in(token)
    if help == "reset-factor":
        _pin(kiosk.browser, "9157")
        assert _pin(kiosk.browser, "9157").headers["Location"] == "/badges/home"
        kiosk.sign_in(token)
    assert [_pin(kiosk.browser, _wrong()).status_code for _ in range(4)] == [401] * 4
    assert _pin(kiosk.browser, _wrong()).headers["Location"] == "/badges/locked"


def test_cli_unlock_starts_the_count_again(runner, redis_client, world, kiosk):
    token = _chosen_pin(redis_client, kiosk, world.older_student)
    kiosk.sign_in(token)
    for _ in range(3):
        _pin(kiosk.browser, _wrong())
    assert runner.invoke(args=["badges", "unlock", "katherine"]).exit_code == 0
    assert _wrong_tries(world.older_student) == 0


@pytest.mark.parametrize("guess", ["0000", "4821"])
def test_a_guess_on_another_kiosk_cannot_slip_past_the_lock(redis_client, world, guess):
    # Two kiosks guess at once: both read the row unlocked with four wrong tries, then one locks
    # it. The other's answer, right or wrong, must be "locked", not one more try.
    student = world.older_student
    set_factor(db.session, student, FactorKind.pin, hash_factor(FactorKind.pin, "4821"))
    window = RateLimiter(redis_client, "5 per 15 minutes", scope="test-factor")   # the default
    badge_id = 1
    for _ in range(4):
        with pytest.raises(WrongFactor):
            check_factor(db.session, window, student, badge_id, FactorKind.pin, _wrong(), secret_key=KEY)
    with Session(db.engine) as other_kiosk:
        stale = other_kiosk.get(Person, student.id)
        assert other_kiosk.get(BadgeFactor, student.id).locked_at is None
        with pytest.raises(FactorLocked):
            check_factor(db.session, window, student, badge_id, FactorKind.pin, "1111", secret_key=KEY)
        with pytest.raises(FactorLocked):
            check_factor(other_kiosk, window, stale, badge_id, FactorKind.pin, guess, secret_key=KEY)
    assert _wrong_tries(student) == 5


def test_the_district_sets_how_many_wrong_tries_lock(app, redis_client, world, kiosk):
    """PORTAL_BADGE_FACTOR_LIMIT "3 per 1 second": the third wrong try in a row locks, even when
    the tries come slower than the window."""
    app.config["SETTINGS"] = dataclasses.replace(app.config["SETTINGS"],
                                                 badge_factor_limit="3 per 1 second")
    app.extensions.pop("badge_limits", None)
    token = _chosen_pin(redis_client, kiosk, world.older_student)
    kiosk.sign_in(token)
    assert [_pin(kiosk.browser, _wrong()).status_code for _ in range(2)] == [401] * 2
    time.sleep(1.2)
    assert _pin(kiosk.browser, _wrong()).headers["Location"] == "/badges/locked"


# --- a young child presses twice (found by review, in a real browser) -------------------------

@pytest.mark.parametrize("typed", ["", "12", "abcd", "1234567", "12 34"])
def test_a_pin_that_is_no_pin_is_said_so_and_not_counted(redis_client, world, kiosk, typed):
    # Before, an empty field (the second press of a double-click lands on a page whose field is
    # empty) counted as a wrong try: a double press was two tries, and Enter pressed twice twice
    # locked a child out.
    token = _chosen_pin(redis_client, kiosk, world.older_student)
    kiosk.sign_in(token)
    answer = _pin(kiosk.browser, typed)
    assert answer.status_code == 400
    assert "A PIN has 4 to 6 numbers" in answer.get_data(as_text=True)
    assert _wrong_tries(world.older_student) == 0
    assert _pin(kiosk.browser, "4821").headers["Location"] == "/badges/home"


def test_the_same_wrong_pin_pressed_twice_at_once_is_one_wrong_try(redis_client, world, kiosk):
    token = _chosen_pin(redis_client, kiosk, world.older_student)
    kiosk.sign_in(token)
    assert [_pin(kiosk.browser, "5555").status_code for _ in range(3)] == [401] * 3
    assert _wrong_tries(world.older_student) == 1
    assert _pin(kiosk.browser, "5556").status_code == 401   # another answer is another try
    assert _wrong_tries(world.older_student) == 2
    # What the repeat is known by for that moment is not the PIN.
    remembered = [k.decode() for k in redis_client.scan_iter("portal:limit:*once*")]
    assert remembered and not any("5555" in k or "5556" in k for k in remembered)
    assert all(0 < redis_client.ttl(k) <= 3 for k in remembered)


def test_the_same_wrong_pin_counts_again_after_a_moment(redis_client, world, kiosk, clock):
    from portal.badges.factors import SAME_ANSWER_SECONDS
    token = _chosen_pin(redis_client, kiosk, world.older_student)
    kiosk.sign_in(token)
    _pin(kiosk.browser, "5555")
    time.sleep(SAME_ANSWER_SECONDS + 0.2)
    _pin(kiosk.browser, "5555")
    assert _wrong_tries(world.older_student) == 2


def _pressed_on(page) -> dict:
    """The form of a picture page as the browser would send it, without the pick."""
    text = page.get_data(as_text=True)
    form = {"csrf_token": _csrf(page), "picked": re.findall(r'name="picked" value="(\w+)"', text)}
    pressed = re.search(r'name="pressed" value="([^"]+)"', text)
    if pressed:
        form["pressed"] = pressed.group(1)
    return form


def test_a_double_pressed_picture_is_one_pick(redis_client, world, kiosk, clock):
    set_policy(db.session, world.school, second_factor_grades="01", factor="picture")
    kiosk.sign_in(issue(redis_client, world.student))
    first = _pictures(kiosk.browser, "dog")
    assert "1 of 3 picked" in first.get_data(as_text=True)
    assert re.search(r'data-picture="dog"\s+autofocus', first.get_data(as_text=True))
    clock.advance(milliseconds=300)     # the second press of the double-click, on the new page
    again = kiosk.browser.post("/badges/check", data={**_pressed_on(first), "pick": "dog"})
    assert again.status_code == 204     # the browser stays on the page it shows
    clock.advance(milliseconds=300)
    other = kiosk.browser.post("/badges/check", data={**_pressed_on(first), "pick": "cat"})
    assert "2 of 3 picked" in other.get_data(as_text=True)
    # Meant: the same picture again, a moment later, is a pick (pictures may repeat: cat, cat).
    clock.advance(milliseconds=650)
    third = kiosk.browser.post("/badges/check", data={**_pressed_on(other), "pick": "cat"})
    assert "Pick the same three pictures again" in third.get_data(as_text=True)


def test_a_double_press_is_timed_from_when_the_page_was_shown_where_its_script_says(redis_client, world,
                                                                                   kiosk, clock):
    # A slow Chromebook shows the page well after it was made: the page's script sends how long
    # it had been on the screen, and that is what counts.
    set_policy(db.session, world.school, second_factor_grades="01", factor="picture")
    kiosk.sign_in(issue(redis_client, world.student))
    first = _pictures(kiosk.browser, "dog")
    assert 'name="shown_ms"' in first.get_data(as_text=True)
    clock.advance(milliseconds=900)     # made 900 ms ago, on the screen for 150
    again = kiosk.browser.post("/badges/check", data={**_pressed_on(first), "pick": "dog", "shown_ms": "150"})
    assert again.status_code == 204
    clock.advance(milliseconds=100)     # a fast one: made 1 s ago and shown as long: a pick
    later = kiosk.browser.post("/badges/check", data={**_pressed_on(first), "pick": "dog", "shown_ms": "700"})
    assert "2 of 3 picked" in later.get_data(as_text=True)
    for odd in ("", "-1", "1e3", "\u0661\u0662", "9" * 40):   # not a count: the portal's own measure
        # Each the third pick of a sign-in of its own (the first value's moved the child on).
        kiosk.sign_in(issue(redis_client, world.student))
        first = _pictures(kiosk.browser, "dog")
        clock.advance(milliseconds=1000)
        later = kiosk.browser.post("/badges/check", data={**_pressed_on(first), "pick": "dog", "shown_ms": "700"})
        clock.advance(milliseconds=600)
        answer = kiosk.browser.post("/badges/check", data={**_pressed_on(later), "pick": "dog", "shown_ms": odd})
        assert answer.status_code == 200, odd


def test_a_double_press_on_the_last_picture_keeps_what_went_wrong_on_screen(redis_client, world,
                                                                           kiosk, clock):
    set_policy(db.session, world.school, second_factor_grades="01", factor="picture")
    token = issue(redis_client, world.student)
    kiosk.sign_in(token)
    _pictures(kiosk.browser, "cat", "boat", "star")
    _pictures(kiosk.browser, "cat", "boat", "star")
    kiosk.sign_in(token)
    wrong = _pictures(kiosk.browser, "cat", "boat", "moon")
    assert wrong.status_code == 401 and "not it" in wrong.get_data(as_text=True)
    clock.advance(milliseconds=200)
    again = kiosk.browser.post("/badges/check", data={**_pressed_on(wrong), "pick": "moon"})
    assert again.status_code == 204
    assert _wrong_tries(world.student) == 1


def test_a_forged_press_mark_changes_nothing_but_that_press(redis_client, world, kiosk, clock):
    set_policy(db.session, world.school, second_factor_grades="01", factor="picture")
    kiosk.sign_in(issue(redis_client, world.student))
    page = kiosk.browser.get("/badges/check")
    for forged in ["dog:abc", "dog:-5", ":", "dog", "dog:" + "9" * 400, "cat:1"]:
        answer = kiosk.browser.post("/badges/check", data={"csrf_token": _csrf(page), "pressed": forged,
                                                           "pick": "dog"})
        assert answer.status_code == 200 and "1 of 3 picked" in answer.get_data(as_text=True)
