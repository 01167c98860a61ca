"""A new card, a temporary badge or a new password while Redis (the session store) fails: full
(maxmemory reached under noeviction, as production runs it: reads and PING work, writes are
refused), or gone just after the database's commit. Found by review: the press committed a new
card (or password) whose token was only in the answer, voided the old one, and answered "Sign-in
is unavailable", so each retry voided another card. Now: Redis away before anything changed is a
plain refusal that changed nothing; Redis failing after the commit still hands out the card (or
the password), with a note of what was not done."""
from __future__ import annotations

import html
import re
import subprocess
from contextlib import contextmanager

import pytest
import redis
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from portal.badges.token import token_hash
from portal.db import db
from portal.devserver import free_port
from portal.models import Badge, Event, Person
from tests.badges.conftest import (
    PASSWORD, csrf_from, enroll_kiosk, issue, login, new_client, session_data, staff_post,
)
from tests.badges.test_sheets import read_sheet

CARD_NOTE = "The old card no longer works. Apps opened with it may stay signed in until they time out."
TEMPORARY_NOTE = ("The old temporary badge no longer works. Apps opened with it may stay signed "
                  "in until they time out.")
REFUSED = ("Part of the portal isn't answering just now, so nothing changed. Try again in a minute. "
           "If it keeps happening, tell your district's IT team.")


@pytest.fixture
def redis_full(redis_client):
    """Within it, the tests' own redis-server is full: PING and reads work, writes that need
    memory are refused (OOM). Its settings are put back after, whatever happens."""
    before = {key: redis_client.config_get(key)[key] for key in ("maxmemory", "maxmemory-policy")}

    def put_back():
        for key, value in before.items():
            redis_client.config_set(key, value)

    @contextmanager
    def full():
        redis_client.config_set("maxmemory-policy", "noeviction")
        redis_client.config_set("maxmemory", "1")
        try:
            yield
        finally:
            put_back()
    yield full
    put_back()


@pytest.fixture
def redis_goes_at_commit(redis_client):
    """Within it, Redis goes away (connections refused) the moment the database next commits,
    for every user of the app's connection pool (sessions, limits, the routes); back after."""
    pool = redis_client.connection_pool
    port = pool.connection_kwargs["port"]

    def point_at(where: int) -> None:
        pool.connection_kwargs["port"] = where
        pool.disconnect()
        pool.reset()               # the pooled connections go; new ones are made to `where`

    def gone(_session):
        point_at(free_port())

    @contextmanager
    def going():
        event.listen(Session, "after_commit", gone)
        try:
            yield
        finally:
            event.remove(Session, "after_commit", gone)
            point_at(port)
    yield going
    point_at(port)


def _gone_at_the_routes_ping(monkeypatch, redis_client):
    """Redis goes away just before the route's own PING, the first thing it does (a signed-in
    person's session was read already)."""
    def ping(*args, **kwargs):
        raise redis.ConnectionError("gone")
    monkeypatch.setattr(redis_client, "ping", ping)


def _badges(student) -> list[tuple[str, str | None]]:
    db.session.expire_all()
    return [(b.kind.value, b.revoked_reason) for b in db.session.scalars(
        select(Badge).where(Badge.person_id == student.id).order_by(Badge.id))]


def _events(kind: str) -> int:
    return len(db.session.scalars(select(Event).where(Event.kind == kind)).all())


def _row_form(world, **fields) -> dict:
    page = f"/teacher/sections/{world.section.id}"
    return {"paper": "letter", "next": page, "school": str(world.school.id), **fields}


def _page_text(pdf) -> str:
    return " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())


@pytest.mark.parametrize("hours", [None, "4"], ids=["replace card", "temporary badge"])
def test_a_badge_printed_while_redis_is_full_is_handed_out_with_a_note(
        app, redis_client, world, kiosk, redis_full, tmp_path, hours):
    extra = {"hours": hours} if hours else {}
    old = issue(redis_client, world.student, temporary_hours=int(hours) if hours else None)
    kiosk.sign_in(old)                                   # Ada is signed in with the old one
    assert kiosk.browser.get("/badges/home").status_code == 200
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    with redis_full():
        answer = teacher.post(f"/badges/students/{world.student.id}/issue",
                              data={"csrf_token": csrf, **_row_form(world, **extra)})
        assert answer.status_code == 201, answer.get_data(as_text=True)[:400]
        assert answer.headers["Content-Type"] == "application/pdf"
    pdf = tmp_path / "badge.pdf"
    pdf.write_bytes(answer.data)
    [([token], _)] = read_sheet(pdf)
    assert (TEMPORARY_NOTE if hours else CARD_NOTE) in _page_text(pdf)
    kind = "temporary" if hours else "permanent"
    assert _badges(world.student) == [(kind, "reissued"), (kind, None)]
    assert db.session.scalar(select(Badge.token_hash).where(Badge.revoked_at.is_(None))) == token_hash(token)
    # The sign-in the old one began is still in Redis (it could not be ended), but refused: every
    # request checks the badge of a badge session in the database.
    assert session_data(redis_client, kiosk.browser) is not None
    assert kiosk.browser.get("/badges/home").status_code == 302
    assert kiosk.scan(old).status_code == 403
    assert kiosk.sign_in(token).status_code == 302       # the new one works
    assert kiosk.browser.get("/badges/home").status_code == 200


def test_a_hand_off_of_the_old_card_not_yet_opened_does_not_sign_in_after_it(
        app, redis_client, world, kiosk, redis_full):
    old = issue(redis_client, world.student)
    scan = kiosk.scan(old)
    assert scan.status_code == 200                       # the hand-off, not yet opened
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    with redis_full():
        answer = teacher.post(f"/badges/students/{world.student.id}/issue",
                              data={"csrf_token": csrf, **_row_form(world)})
        assert answer.status_code == 201
    opened = kiosk.browser.get(scan.json["handoff_url"])
    assert opened.status_code == 403 and "That sign-in has run out" in opened.get_data(as_text=True)
    assert kiosk.browser.get("/badges/home").status_code == 302


def test_a_card_replaced_as_redis_goes_is_handed_out_with_a_note(app, redis_client, world, kiosk,
                                                                  redis_goes_at_commit):
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    first = staff_post(teacher, csrf, f"/badges/students/{world.student.id}/issue")
    assert first.status_code == 201 and "note" not in first.json     # all went well
    old = first.json["token"]
    kiosk.sign_in(old)
    with redis_goes_at_commit():
        answer = staff_post(teacher, csrf, f"/badges/students/{world.student.id}/issue",
                            school=world.school.id)
    assert answer.status_code == 201, answer.get_data(as_text=True)[:400]
    assert answer.json["note"] == CARD_NOTE
    assert _badges(world.student) == [("permanent", "reissued"), ("permanent", None)]
    assert _events("badge_issued") == 2                  # the old card's, and this one's
    assert kiosk.browser.get("/badges/home").status_code == 302
    assert kiosk.scan(old).status_code == 403
    assert kiosk.scan(answer.json["token"]).status_code == 200


@pytest.mark.parametrize("as_json", [False, True], ids=["form", "json"])
def test_no_badge_is_made_when_redis_is_away_before_it(app, redis_client, world, kiosk, monkeypatch,
                                                       as_json):
    old = issue(redis_client, world.student)
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    _gone_at_the_routes_ping(monkeypatch, redis_client)
    path = f"/badges/students/{world.student.id}/issue"
    answer = (staff_post(teacher, csrf, path) if as_json
              else teacher.post(path, data={"csrf_token": csrf, **_row_form(world)}))
    monkeypatch.undo()
    assert answer.status_code == 503
    if as_json:
        assert answer.json == {"error": "No badge was made", "advice": REFUSED}
    else:
        text = " ".join(answer.get_data(as_text=True).split())
        assert "No badge was made" in text and REFUSED.replace("'", "&#39;") in text
    assert _badges(world.student) == [("permanent", None)]
    assert _events("badge_issued") == 1 and _events("badge_voided") == 0
    assert kiosk.scan(old).status_code == 200


# --- a new password ---

PASSWORD_NOTE = ("The old password no longer works, but the portal could not sign Ada Lovelace out "
                 "everywhere just now: a sign-in already open with their badge, or in an app, may "
                 "last until it times out.")
WAIT_NOTE = "If they typed a wrong password too often, they may have to wait a while before the new one works."


def _new_password(app, world, going):
    """Ada is signed in with her password (a laptop) and her badge (a classroom device); her
    teacher gives her a new one while Redis fails (`going`). Return the page, the laptop and
    the device's browser."""
    laptop = new_client(app)
    login(laptop, "ada")
    kiosk = enroll_kiosk(app, app.extensions["redis"], world.school)
    kiosk.sign_in(issue(app.extensions["redis"], world.student))
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    with going():
        page = teacher.post(f"/teacher/students/{world.student.id}/password",
                            data={"csrf_token": csrf, "password": "",
                                  "next": f"/teacher/sections/{world.section.id}"})
    return page, laptop, kiosk.browser


def _shown_password(page) -> tuple[str, str]:
    """The password the page shows, and its words (spaces collapsed, entities read)."""
    body = page.get_data(as_text=True)
    shown = re.search(r'<p class="new-password" id="new-password">([^<]+)</p>', body).group(1)
    return shown, html.unescape(" ".join(body.split()))


def _password_works(app, password: str) -> bool:
    browser = new_client(app)
    answer = browser.post("/login", data={"username": "ada", "password": password,
                                          "csrf_token": csrf_from(browser, "/login")})
    return answer.status_code == 302


def test_a_new_password_set_while_redis_is_full_is_shown_with_a_note(app, world, redis_full):
    page, laptop, device = _new_password(app, world, redis_full)
    assert page.status_code == 200, page.get_data(as_text=True)[:400]
    shown, text = _shown_password(page)
    assert PASSWORD_NOTE in text and "they are signed out" not in text
    assert _events("password_set") == 1
    assert _password_works(app, shown) and not _password_works(app, PASSWORD)
    assert laptop.get("/").status_code == 302      # begun with the old password: refused
    assert device.get("/badges/home").status_code == 200   # a badge's: as the note says


def test_a_new_password_set_as_redis_goes_is_shown_with_a_note(app, world, redis_goes_at_commit):
    page, laptop, _ = _new_password(app, world, redis_goes_at_commit)
    assert page.status_code == 200, page.get_data(as_text=True)[:400]
    shown, text = _shown_password(page)
    assert f"{PASSWORD_NOTE} {WAIT_NOTE}" in text
    assert _password_works(app, shown) and not _password_works(app, PASSWORD)
    assert laptop.get("/").status_code == 302


def test_no_new_password_is_set_when_redis_is_away_before_it(app, redis_client, world, monkeypatch):
    before = db.session.get(Person, world.student.id).password_hash
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    _gone_at_the_routes_ping(monkeypatch, redis_client)
    page = teacher.post(f"/teacher/students/{world.student.id}/password",
                        data={"csrf_token": csrf, "password": "",
                              "next": f"/teacher/sections/{world.section.id}"})
    monkeypatch.undo()
    assert page.status_code == 503
    text = " ".join(page.get_data(as_text=True).split())
    assert "No new password was set" in text and REFUSED.replace("'", "&#39;") in text
    db.session.expire_all()
    assert db.session.get(Person, world.student.id).password_hash == before
    assert _events("password_set") == 0


def test_the_command_says_a_password_set_as_redis_goes_is_set(app, runner, world,
                                                              redis_goes_at_commit):
    with redis_goes_at_commit():
        result = runner.invoke(args=["users", "set-password", "ada"], input="a brand new password\n")
    assert result.exit_code == 1 and result.exception.__class__ is SystemExit
    assert result.output.strip().splitlines() == [
        "Error: password set for ada, but Redis failed before their other sessions ended: those "
        "begun with the old password no longer work, but one begun otherwise (with a badge), or "
        "in an app, may last until it times out"]
    assert _password_works(app, "a brand new password") and not _password_works(app, PASSWORD)


# --- a class's sheet ---

@pytest.mark.parametrize("replace", [False, True], ids=["print badges", "replace every card"])
def test_a_class_sheet_printed_while_redis_is_full_is_handed_out(app, redis_client, world, kiosk,
                                                                 redis_full, tmp_path, replace):
    # Found while mending the above: the sheet's answer was the PDF, but its message for the class
    # page could not be stored in a full Redis, and that turned the PDF into the 503 page, its
    # new cards committed and held by nobody (the page then said every student had a card).
    old = issue(redis_client, world.student)
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    page = teacher.get(f"/teacher/sections/{world.section.id}").get_data(as_text=True)
    fields = {"csrf_token": csrf, "paper": "letter", "next": f"/teacher/sections/{world.section.id}"}
    if replace:
        fields.update(replace="yes", confirm="yes",
                      expect=re.search(r'name="expect" value="([0-9a-f]+)"', page).group(1))
    with redis_full():
        answer = teacher.post(f"/badges/sections/{world.section.id}/sheet", data=fields)
        assert answer.status_code == 200, answer.get_data(as_text=True)[:400]
        assert answer.headers["Content-Type"] == "application/pdf"
    pdf = tmp_path / "sheet.pdf"
    pdf.write_bytes(answer.data)
    tokens = [token for codes, _ in read_sheet(pdf) for token in codes]
    assert len(tokens) == (3 if replace else 2)
    # Replacing: the old card's sessions could not be ended, and the sheet says so.
    said = "The old cards no longer work. Apps opened with them may stay signed in until they time out."
    assert (said in _page_text(pdf)) is replace
    assert answer.headers.get("X-Badge-Note") == (said if replace else None)
    assert [kiosk.scan(token).status_code for token in tokens] == [200] * len(tokens)
    assert kiosk.scan(old).status_code == (403 if replace else 200)
