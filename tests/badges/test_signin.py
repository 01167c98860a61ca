"""Badge sign-in at a kiosk: what is accepted, what is refused (all alike), and the limits."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from portal.badges.policy import set_policy
from portal.badges.services import void_badges_for_person
from portal.badges.token import mint_token
from portal.db import db
from portal.models import Badge, Event
from tests.badges.conftest import enroll_kiosk, issue, login, new_client, session_data, staff_post


def test_badge_signs_in_through_the_handoff_and_shows_tiles(app, redis_client, world, kiosk):
    token = issue(redis_client, world.student)
    answer = kiosk.scan(token)
    assert answer.status_code == 200
    assert set(answer.json) == {"handoff_url", "expires_in"}
    assert answer.json["expires_in"] == 30
    opened = kiosk.browser.get(answer.json["handoff_url"])
    assert opened.status_code == 302 and opened.headers["Location"] == "/badges/home"
    page = kiosk.browser.get("/badges/home").get_data(as_text=True)
    assert "Hi, Ada!" in page
    assert "Ada Lovelace" in page
    assert "Not you? Sign out" in page
    assert session_data(redis_client, kiosk.browser)["auth_method"] == "badge"


def test_scan_answer_carries_no_personal_data(redis_client, world, kiosk):
    import re
    answer = kiosk.scan(issue(redis_client, world.student)).get_data(as_text=True)
    # The hand-off code is random letters: it may spell "ada" (1 scan in about 6,000).
    answer = re.sub(r"/kiosk/handoff/[A-Za-z0-9_-]+", "/kiosk/handoff/CODE", answer)
    assert "/kiosk/handoff/CODE" in answer
    for word in ("Ada", "Lovelace", "ada", str(world.student.id) + ","):
        assert word not in answer


def test_device_of_another_school_is_refused(app, redis_client, world):
    oak_kiosk = enroll_kiosk(app, redis_client, world.other_school)
    answer = oak_kiosk.scan(issue(redis_client, world.student))
    assert answer.status_code == 403


def test_every_refusal_answers_identically(app, redis_client, world, kiosk, clock):
    good = issue(redis_client, world.student)
    assert kiosk.scan(good).status_code == 200

    voided = issue(redis_client, world.classmate)
    void_badges_for_person(db.session, redis_client, world.classmate)
    expired = issue(redis_client, world.other_student, clock=clock, temporary_hours=1)
    far = issue(redis_client, world.far_student)
    db.session.refresh(world.older_student)
    world.older_student.grades = "09"
    db.session.commit()
    wrong_grade = issue(redis_client, world.older_student)
    disabled_student = world.student
    disabled = good
    clock.advance(hours=2)
    disabled_student.enabled = False
    db.session.commit()

    bad_checksum = good[:-1] + ("A" if good[-1] != "A" else "B")
    candidates = {
        "unknown": mint_token(), "bad checksum": bad_checksum, "not a badge": "https://example.com/",
        "empty": "", "voided": voided, "expired": expired, "other school": far,
        "grade not allowed": wrong_grade, "disabled": disabled, "number": 12345,
    }
    answers = {name: kiosk.scan(token) for name, token in candidates.items()}
    statuses = {name: a.status_code for name, a in answers.items()}
    bodies = {a.get_data() for a in answers.values()}
    assert set(statuses.values()) == {403}, statuses
    assert len(bodies) == 1
    headers = {tuple(sorted((k, v) for k, v in a.headers.items() if k.lower() != "date"))
               for a in answers.values()}
    assert len(headers) == 1


def test_scans_are_rate_limited_per_device(app, redis_client, world, kiosk, settings):
    from dataclasses import replace
    app.config["SETTINGS"] = replace(settings, badge_limit_per_device="3 per minute")
    for _ in range(3):
        assert kiosk.scan(mint_token()).status_code == 403
    assert kiosk.scan(issue(redis_client, world.student)).status_code == 429
    other = enroll_kiosk(app, redis_client, world.school)
    assert other.scan(mint_token()).status_code == 403


def test_the_per_device_limit_says_when_it_frees_up_not_a_fixed_minute(app, redis_client, world,
                                                                       kiosk, settings):
    """A kiosk honours Retry-After: a fixed 60 left it deaf long after a short limit had
    reset. It is the limit's own time: when the oldest scan in its window leaves it."""
    import time
    from dataclasses import replace
    app.config["SETTINGS"] = replace(settings, badge_limit_per_device="2 per 10 seconds")
    assert kiosk.scan(mint_token()).status_code == 403
    time.sleep(2)
    assert kiosk.scan(mint_token()).status_code == 403
    limited = kiosk.scan(issue(redis_client, world.student))
    assert limited.status_code == 429 and 7 <= int(limited.headers["Retry-After"]) <= 8


def test_scans_are_rate_limited_per_badge(app, redis_client, world, settings):
    from dataclasses import replace
    app.config["SETTINGS"] = replace(settings, badge_limit_per_badge="2 per 5 minutes")
    first = enroll_kiosk(app, redis_client, world.school)
    second = enroll_kiosk(app, redis_client, world.school)
    token = issue(redis_client, world.student)
    assert first.scan(token).status_code == 200
    assert second.scan(token).status_code == 200
    # Refused like a bad badge (403), not "too many tries" (429): the kiosk pauses every scan on
    # a 429, and the next child's badge must still work.
    assert first.scan(token).status_code == 403
    assert second.scan(token).status_code == 403
    assert first.scan(issue(redis_client, world.classmate)).status_code == 200


def test_voided_badge_reuse_is_audited_and_shown_to_the_teacher(app, redis_client, world, kiosk):
    token = issue(redis_client, world.student)
    void_badges_for_person(db.session, redis_client, world.student, reason="lost")
    assert kiosk.scan(token).status_code == 403
    events = db.session.scalars(select(Event).where(Event.kind == "badge_voided_reuse")).all()
    assert len(events) == 1
    assert events[0].person_id == world.student.id
    assert events[0].data["device_id"] == kiosk.device_id
    assert token not in str(events[0].data)

    teacher = new_client(app)
    login(teacher, "t.four")
    listed = teacher.get("/badges/reuse").json["events"]
    assert [(e["student"], e["via"]) for e in listed] == [("Ada Lovelace", "kiosk")]
    # With its offset: SQLite's had none, so a script could not tell which zone it was in.
    assert datetime.fromisoformat(listed[0]["at"]).utcoffset() == timedelta(0)
    stranger = new_client(app)
    login(stranger, "t.five")
    assert stranger.get("/badges/reuse").json["events"] == []


def test_unknown_token_is_not_audited_as_reuse(redis_client, world, kiosk):
    assert kiosk.scan(mint_token()).status_code == 403
    assert db.session.scalar(select(Event).where(Event.kind == "badge_voided_reuse")) is None


def test_last_use_time_and_kiosk_are_recorded(redis_client, world, kiosk, clock):
    token = issue(redis_client, world.student)
    badge_id = db.session.scalar(select(Badge.id).where(Badge.person_id == world.student.id))
    clock.advance(minutes=5)
    assert kiosk.scan(token).status_code == 200
    db.session.expire_all()
    badge = db.session.get(Badge, badge_id)
    assert badge.last_used_at == clock.now
    assert badge.last_used_device_id == kiosk.device_id


def test_grade_outside_the_policy_is_refused(redis_client, world, kiosk):
    token = issue(redis_client, world.student)
    set_policy(db.session, world.school, grades="KG")
    assert kiosk.scan(token).status_code == 403
    set_policy(db.session, world.school, grades="KG,01")
    assert kiosk.scan(token).status_code == 200


def test_kiosk_endpoints_take_only_json_and_a_bearer_credential(app, redis_client, world, kiosk):
    token = issue(redis_client, world.student)
    api = new_client(app)
    as_form = api.post("/kiosk/badge", data={"token": token}, headers=kiosk.headers)
    assert as_form.status_code == 415
    in_body = api.post("/kiosk/badge", json={"token": token, "credential": kiosk.credential})
    assert in_body.status_code == 401
    in_query = api.post(f"/kiosk/badge?access_token={kiosk.credential}", json={"token": token})
    assert in_query.status_code == 401
    extra = api.post("/kiosk/badge", json={"token": token, "name": "Ada"}, headers=kiosk.headers)
    assert extra.status_code == 400
    assert api.post("/kiosk/badge", json={"token": token}, headers=kiosk.headers).status_code == 200


def test_json_nested_too_deep_or_holding_a_nul_is_refused_in_plain_words(app, redis_client, world,
                                                                         kiosk):
    """A body nested past the parser's depth was a RecursionError, and a NUL in a JSON string a
    database error on PostgreSQL: both were 500s. Nothing is enrolled or signed in."""
    from portal.badges.kiosks import create_pairing_code
    from portal.models import KioskDevice
    token = issue(redis_client, world.student)
    deep = "[" * 100_000 + "]" * 100_000
    nested = kiosk.api.post("/kiosk/badge", data=deep, headers={**kiosk.headers,
                                                               "Content-Type": "application/json"})
    assert nested.status_code == 400 and nested.json["error"] == "Send only the token"
    with_nul = kiosk.scan(token + "\x00")     # JSON out, though the device sent no Accept
    assert with_nul.status_code == 400 and with_nul.json["error"] == "That had characters we can't read"

    code = create_pairing_code(db.session, redis_client, world.school).code
    devices = db.session.scalar(select(db.func.count(KioskDevice.id)))
    named = new_client(app).post("/kiosk/enroll", json={"code": code, "name": "Room\x004"},
                                 headers={"Accept": "application/json"})
    assert named.status_code == 400 and named.json["error"] == "That had characters we can't read"
    assert db.session.scalar(select(db.func.count(KioskDevice.id))) == devices
    enrolled = new_client(app).post("/kiosk/enroll", json={"code": code, "name": "Room 4"})
    assert enrolled.status_code == 201     # the code was not used up by the refusal
    assert kiosk.scan(token).status_code == 200


def test_ids_that_are_no_ids_are_refused_not_failed(app, redis_client, world, kiosk):
    """A number past what the database holds, or digits of another script, in a path, a query or
    the device cookie: no page or a refusal, never a 500 (int("²") raised; a huge id overflowed
    the database)."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    for number in ("9" * 19, "\u0663", "\u00b2"):
        assert teacher.get(f"/badges/students/{number}").status_code == 404
        assert teacher.get("/kiosk/devices", query_string={"school": number}).status_code == 403
        assert staff_post(teacher, csrf, "/kiosk/pair", school=number).status_code == 403
    handoff = kiosk.scan(issue(redis_client, world.student)).json["handoff_url"]
    stranger = new_client(app)
    stranger.set_cookie("portal_kiosk", "\u00b2." + "k" * 43, path="/kiosk/")
    assert stranger.get(handoff).status_code == 403


def test_kiosk_api_needs_no_csrf_token_but_staff_routes_do(app, redis_client, world, kiosk):
    assert kiosk.scan(issue(redis_client, world.student)).status_code == 200
    teacher = new_client(app)
    login(teacher, "t.four")
    refused = teacher.post(f"/badges/students/{world.student.id}/void", json={})
    assert refused.status_code == 400


def test_the_handoff_link_names_the_configured_address_not_the_host(app, redis_client, world, kiosk):
    from dataclasses import replace
    app.config["SETTINGS"] = replace(app.config["SETTINGS"], oidc_issuer="https://portal.district.example")
    answer = kiosk.api.post("/kiosk/badge", json={"token": issue(redis_client, world.student)},
                            headers={**kiosk.headers, "Host": "evil.example"})
    assert answer.json["handoff_url"].startswith("https://portal.district.example/kiosk/handoff/")
