"""Kiosk devices: pairing codes, enrollment, hashed credentials, listing and revoking."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.badges.kiosks import PAIR_ALPHABET, create_pairing_code
from portal.db import db
from portal.models import KioskDevice
from tests.badges.conftest import enroll_kiosk, issue, let_time_pass, login, new_client, staff_post


def _enroll(app, code, **extra):
    return new_client(app).post("/kiosk/enroll", json={"code": code, **extra})


def test_pairing_code_is_eight_unambiguous_characters(redis_client, world):
    code = create_pairing_code(db.session, redis_client, world.school).code
    assert len(code) == 8 and set(code) <= set(PAIR_ALPHABET)
    assert not set("0O1IL") & set(PAIR_ALPHABET)


def test_pairing_code_works_once(app, redis_client, world):
    code = create_pairing_code(db.session, redis_client, world.school).code
    assert _enroll(app, code).status_code == 201
    again = _enroll(app, code)
    assert again.status_code == 400
    assert len(db.session.scalars(select(KioskDevice)).all()) == 1


def test_half_a_character_is_refused_before_it_uses_up_the_code(app, redis_client, world):
    # "\ud800" in JSON is half a UTF-16 pair: no text, so nothing can hash or store it.
    code = create_pairing_code(db.session, redis_client, world.school).code
    client = new_client(app)
    for body in ('{"code": "\\ud800ABCDEFG"}', '{"code": "%s", "name": "Room \\ud800"}' % code):
        answer = client.post("/kiosk/enroll", data=body, content_type="application/json")
        assert answer.status_code == 400 and answer.json["error"]
    assert _enroll(app, code).status_code == 201


def test_pairing_code_may_be_typed_with_a_dash_in_lower_case(app, redis_client, world):
    code = create_pairing_code(db.session, redis_client, world.school).code
    assert _enroll(app, f"{code[:4]}-{code[4:]}".lower()).status_code == 201


def test_pairing_code_expires_after_ten_minutes(app, redis_client, world):
    code = create_pairing_code(db.session, redis_client, world.school).code
    key = next(redis_client.scan_iter("portal:kiosk:pair:*"))
    assert 590 < redis_client.ttl(key) <= 600
    let_time_pass(redis_client, "portal:kiosk:pair:*", 601)
    assert _enroll(app, code).status_code == 400


def test_enrollment_gives_a_credential_stored_only_hashed(app, redis_client, world):
    code = create_pairing_code(db.session, redis_client, world.school, name="Room 4 Chromebook").code
    answer = _enroll(app, code)
    assert answer.headers["Cache-Control"] == "no-store"
    credential = answer.json["credential"]
    assert len(credential) >= 40
    device = db.session.get(KioskDevice, answer.json["device_id"])
    assert device.name == "Room 4 Chromebook" and device.school_id == world.school.id
    assert credential not in (device.secret_hash, device.name)
    import hashlib
    assert device.secret_hash == hashlib.sha256(credential.encode()).hexdigest()


def test_wrong_pairing_codes_are_rate_limited_per_address(app, redis_client, world):
    answers = [_enroll(app, "ABCDEFGH").status_code for _ in range(21)]
    assert answers[:20] == [400] * 20 and answers[20] == 429


def test_teacher_pairs_a_device_for_their_school(app, redis_client, world):
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    answer = staff_post(teacher, csrf, "/kiosk/pair", school=world.school.id, name="Room 4")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert _enroll(app, answer.json["code"]).json["name"] == "Room 4"
    page = teacher.post("/kiosk/pair", data={"school": world.school.id, "csrf_token": csrf})
    assert page.headers["Cache-Control"] == "no-store"
    code = re.search(r'id="pairing-code">(\w{4})-(\w{4})<', page.get_data(as_text=True))
    assert code and _enroll(app, code.group(1) + code.group(2)).status_code == 201


def test_the_pages_give_the_enroll_command_the_kiosk_program_takes(app, redis_client, world):
    # `python -m kiosk enroll` never asks for a code: it takes --portal and --code. My classes
    # says so, and the code's page gives the whole command, which the program's own parser reads.
    import html
    import shlex

    from kiosk.__main__ import _parsers
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    classes = teacher.get("/teacher/").get_data(as_text=True)
    assert "asks for it" not in classes
    assert "python -m kiosk enroll --portal http://localhost --code CODE" in classes
    page = teacher.post("/kiosk/pair", data={"school": world.school.id, "csrf_token": csrf})
    command = re.search(r'id="enroll-command">([^<]*)<', page.get_data(as_text=True))
    assert command
    words = shlex.split(html.unescape(command.group(1)))
    assert words[:4] == ["python", "-m", "kiosk", "enroll"]
    args = _parsers()[0].parse_args(words[4:])
    assert args.portal == "http://localhost"
    assert _enroll(app, args.code).status_code == 201


@pytest.mark.parametrize("change", ["hold", "disable", "remove"])
def test_a_code_made_by_a_teacher_stops_working_when_they_may_no_longer_pair(app, redis_client, world, change):
    # A code lives ten minutes; a teacher put on hold, disabled or removed in them loses it.
    from datetime import datetime, timezone

    from portal.models import Person
    teacher = db.session.get(Person, world.teacher.id)
    code = create_pairing_code(db.session, redis_client, world.school, actor=teacher).code
    kept = create_pairing_code(db.session, redis_client, world.school).code   # made from the command line
    if change == "hold":
        teacher.held_at = datetime.now(timezone.utc)
    elif change == "disable":
        teacher.enabled = False
    else:
        db.session.delete(teacher)
    db.session.commit()
    assert _enroll(app, code).status_code == 400
    assert _enroll(app, kept).status_code == 201
    assert len(db.session.scalars(select(KioskDevice)).all()) == 1


@pytest.mark.parametrize("body", ['{"school": 4', '[4]', '"4"'])
def test_a_pairing_request_that_is_not_a_json_object_is_told_so(app, redis_client, world, body):
    # The same plain answer as the other staff routes give, not a 403 as if the school were wrong.
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    answer = teacher.post("/kiosk/pair", data=body, content_type="application/json",
                          headers={"X-CSRFToken": csrf, "Accept": "application/json"})
    assert answer.status_code == 400 and answer.json["error"] == "Send the fields as a JSON object"
    assert '{"school": 4}' in answer.json["advice"]


def test_teacher_cannot_pair_a_device_for_another_school(app, redis_client, world):
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    assert staff_post(teacher, csrf, "/kiosk/pair", school=world.other_school.id).status_code == 403


def test_revoked_device_is_refused(app, redis_client, world, kiosk):
    token = issue(redis_client, world.student)
    admin = new_client(app)
    csrf = login(admin, "principal")
    answer = staff_post(admin, csrf, f"/kiosk/devices/{kiosk.device_id}/revoke")
    assert answer.status_code == 200 and answer.json["revoked_at"]
    refused = kiosk.scan(token)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert kiosk.api.post("/kiosk/bind", json={}, headers=kiosk.headers).status_code == 401


def test_teacher_cannot_list_or_revoke_devices(app, redis_client, world, kiosk):
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    assert staff_post(teacher, csrf, f"/kiosk/devices/{kiosk.device_id}/revoke").status_code == 403
    assert teacher.get(f"/kiosk/devices?school={world.school.id}").status_code == 403
    assert kiosk.scan(issue(redis_client, world.student)).status_code == 200


def test_admin_lists_the_school_devices(app, redis_client, world, kiosk):
    enroll_kiosk(app, redis_client, world.other_school)
    admin = new_client(app)
    login(admin, "principal")
    listed = admin.get(f"/kiosk/devices?school={world.school.id}").json["devices"]
    assert [d["id"] for d in listed] == [kiosk.device_id]
    assert listed[0]["browser_bound"] is True and "secret_hash" not in listed[0]
    assert admin.get(f"/kiosk/devices?school={world.other_school.id}").status_code == 403


def test_kiosk_cli_pairs_lists_and_revokes(app, runner, redis_client, world):
    paired = runner.invoke(args=["kiosk", "pair", "maple", "--name", "Library cart"])
    assert paired.exit_code == 0, paired.output
    code = paired.stdout.strip().splitlines()[0]
    device_id = _enroll(app, code).json["device_id"]
    listed = runner.invoke(args=["kiosk", "list", "maple"])
    assert listed.exit_code == 0 and f"{device_id}\tLibrary cart" in listed.output
    assert "active" in listed.output
    revoked = runner.invoke(args=["kiosk", "revoke", str(device_id)])
    assert revoked.exit_code == 0
    assert "revoked" in runner.invoke(args=["kiosk", "list", "maple"]).output


@pytest.mark.parametrize("issuer, given", [("", "URL"),
                                            ("https://portal.example.org", "https://portal.example.org"),
                                            ("https://example.org/portal", "https://example.org/portal")])
def test_kiosk_cli_pair_gives_the_portals_address(app, settings, runner, redis_client, world, issuer, given):
    # Found by the deployment review: it printed `--portal URL` where the address is configured.
    from dataclasses import replace
    app.config["SETTINGS"] = replace(settings, oidc_issuer=issuer)
    paired = runner.invoke(args=["kiosk", "pair", "maple"])
    code = paired.stdout.strip()
    assert paired.stderr == (f"valid once, for 10 minutes, at Maple Elementary: python -m kiosk enroll "
                             f"--portal {given} --code {code}\n")


def test_kiosk_cli_lists_the_districts_days_and_times(app, settings, runner, redis_client, world):
    # Enrolled at 20:00 in Chicago on Mar 3, last seen then: the list said 2026-03-04 02:00, with
    # no word that it was UTC, where the class page says Mar 3, 20:00 CST.
    from dataclasses import replace
    from datetime import datetime, timezone
    app.config["SETTINGS"] = replace(settings, timezone="America/Chicago")
    device_id = enroll_kiosk(app, redis_client, world.school).device_id
    evening = datetime(2026, 3, 4, 2, 0, tzinfo=timezone.utc)
    db.session.get(KioskDevice, device_id).created_at = evening
    db.session.get(KioskDevice, device_id).last_seen_at = evening
    db.session.commit()
    listed = runner.invoke(args=["kiosk", "list", "maple"])
    assert listed.exit_code == 0 and "\t2026-03-03\t2026-03-03 20:00 CST\tactive" in listed.output


def test_kiosk_cli_says_what_is_wrong(runner, world):
    for args in (["kiosk", "pair", "nowhere"], ["kiosk", "list", "nowhere"],
                 ["kiosk", "revoke", "999"], ["kiosk", "revoke", "abc"]):
        result = runner.invoke(args=args)
        assert result.exit_code != 0
        assert len(result.output.strip().splitlines()) == 1, result.output
