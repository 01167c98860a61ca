"""Badge lifecycle: tokens stored as hashes, one active badge, reissue, void (one, section,
school, people), expiry, temporary badges, password resets."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.auth.services import set_password
from portal.badges import services
from portal.badges.services import BadgeError, issue_badge
from portal.badges.token import looks_like_badge, mint_token, token_hash
from portal.db import db
from portal.db import Base
from portal.models import Badge, BadgeKind
from tests.badges.conftest import issue, login, new_client, session_data, staff_post


def _active(person):
    db.session.expire_all()
    return db.session.scalars(select(Badge).where(Badge.person_id == person.id,
                                                  Badge.revoked_at.is_(None))).all()


def test_token_is_a_badge_and_the_database_holds_only_its_hash(redis_client, world, kiosk):
    token = issue(redis_client, world.student)
    assert looks_like_badge(token)
    kiosk.sign_in(token)
    dump = []
    with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                dump.extend(str(v) for v in row)
    text_dump = "\n".join(dump)
    assert token not in text_dump
    assert token[5:-6] not in text_dump  # not even the random part
    assert token_hash(token) in text_dump


def test_redis_never_holds_the_token(redis_client, world, kiosk):
    token = issue(redis_client, world.student)
    kiosk.sign_in(token)
    for key in redis_client.scan_iter("*"):
        assert token.encode() not in key
        if redis_client.type(key) == b"string":
            assert token.encode() not in redis_client.get(key)


def test_one_active_badge_per_student(redis_client, world):
    issue(redis_client, world.student)
    issue(redis_client, world.student)
    assert len(_active(world.student)) == 1
    active = _active(world.student)[0]
    db.session.add(Badge(person_id=world.student.id, school_id=world.school.id,
                         token_hash="0" * 64, kind=BadgeKind.permanent, issued_at=active.issued_at,
                         expires_at=active.expires_at))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_reissue_revokes_the_previous_badge_at_once(redis_client, world, kiosk):
    old = issue(redis_client, world.student)
    kiosk.sign_in(old)
    new = issue(redis_client, world.student)
    assert kiosk.scan(old).status_code == 403
    assert kiosk.browser.get("/badges/home").status_code == 302  # the old card's session ended
    assert kiosk.scan(new).status_code == 200


def test_void_ends_badge_sessions_but_not_password_sessions(app, redis_client, world, kiosk):
    kiosk.sign_in(issue(redis_client, world.student))
    laptop = new_client(app)
    login(laptop, "ada")
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    answer = staff_post(teacher, csrf, f"/badges/students/{world.student.id}/void")
    assert answer.status_code == 200 and answer.json == {"students": 1}
    assert kiosk.browser.get("/badges/home").status_code == 302
    assert session_data(redis_client, laptop)["auth_method"] == "password"
    assert laptop.get("/").status_code == 200


def test_void_section_voids_its_students_only(app, redis_client, world, kiosk):
    ada, alan, grace = (issue(redis_client, s) for s in
                        (world.student, world.classmate, world.other_student))
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    answer = staff_post(teacher, csrf, f"/badges/sections/{world.section.id}/void")
    assert answer.json == {"students": 2}
    assert kiosk.scan(ada).status_code == 403
    assert kiosk.scan(alan).status_code == 403
    assert kiosk.scan(grace).status_code == 200


def test_void_school_voids_every_badge_of_the_school(app, redis_client, world, kiosk):
    tokens = [issue(redis_client, s) for s in (world.student, world.classmate, world.other_student)]
    far = issue(redis_client, world.far_student)
    admin = new_client(app)
    csrf = login(admin, "principal")
    answer = staff_post(admin, csrf, f"/badges/schools/{world.school.id}/void")
    assert answer.json == {"students": 3}
    assert all(kiosk.scan(t).status_code == 403 for t in tokens)
    assert len(_active(world.far_student)) == 1 and far


def test_teacher_of_another_section_cannot_void_or_issue(app, redis_client, world):
    issue(redis_client, world.student)
    stranger = new_client(app)
    csrf = login(stranger, "t.five")
    for path in (f"/badges/students/{world.student.id}/void",
                 f"/badges/students/{world.student.id}/issue",
                 f"/badges/students/{world.student.id}/unlock",
                 f"/badges/sections/{world.section.id}/void",
                 f"/badges/schools/{world.school.id}/void",
                 "/badges/students/999999/void"):
        assert staff_post(stranger, csrf, path).status_code == 403, path
    assert stranger.get(f"/badges/students/{world.student.id}").status_code == 403
    assert len(_active(world.student)) == 1


def test_students_cannot_manage_badges(app, redis_client, world):
    student = new_client(app)
    csrf = login(student, "alan")
    assert staff_post(student, csrf, f"/badges/students/{world.student.id}/void").status_code == 403


def test_admin_of_another_school_cannot_void_it(app, redis_client, world, roster):
    from portal.models import Role
    roster.person("oak.principal", role=Role.school_admin, schools=[world.other_school])
    admin = new_client(app)
    csrf = login(admin, "oak.principal")
    assert staff_post(admin, csrf, f"/badges/schools/{world.school.id}/void").status_code == 403
    assert staff_post(admin, csrf, f"/badges/students/{world.student.id}/issue").status_code == 403


def test_a_teacher_issues_no_badge_for_a_school_they_do_not_teach_at(app, redis_client, world, kiosk):
    # Found by review: Ada is in Room 4 at Maple and also enrolled at Oak; Maple's teacher could
    # issue her a badge for Oak (voiding the card she uses there).
    from portal.models import PersonSchool
    db.session.add(PersonSchool(person_id=world.student.id, school_id=world.other_school.id))
    db.session.commit()
    token = issue(redis_client, world.student, school=world.other_school)   # Oak's own card
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    refused = staff_post(teacher, csrf, f"/badges/students/{world.student.id}/issue",
                         school=world.other_school.id)
    assert refused.status_code == 403 and "token" not in refused.get_data(as_text=True)
    db.session.expire_all()
    working = db.session.scalars(select(Badge).where(Badge.person_id == world.student.id,
                                                     Badge.revoked_at.is_(None))).all()
    assert [b.token_hash for b in working] == [token_hash(token)]   # Oak's card still works
    mine = staff_post(teacher, csrf, f"/badges/students/{world.student.id}/issue", school=world.school.id)
    assert mine.status_code == 201 and mine.json["school_id"] == world.school.id


def test_teacher_issues_a_badge_and_sees_it_once(app, redis_client, world, kiosk):
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    answer = staff_post(teacher, csrf, f"/badges/students/{world.student.id}/issue")
    assert answer.status_code == 201
    assert answer.headers["Cache-Control"] == "no-store"
    token = answer.json["token"]
    assert kiosk.scan(token).status_code == 200
    status = teacher.get(f"/badges/students/{world.student.id}").json
    assert "token" not in str(status) and token not in str(status)
    assert status["badges"][0]["last_used_on"] == "Classroom device"


def test_district_admin_may_void_any_school_of_the_district(app, redis_client, world):
    issue(redis_client, world.far_student)
    admin = new_client(app)
    csrf = login(admin, "district")
    answer = staff_post(admin, csrf, f"/badges/schools/{world.other_school.id}/void")
    assert answer.json == {"students": 1}


def test_disabled_student_badge_fails(redis_client, world, kiosk):
    token = issue(redis_client, world.student)
    world.student.enabled = False
    db.session.commit()
    assert kiosk.scan(token).status_code == 403


def test_void_badges_for_people_voids_and_ends_badge_sessions(redis_client, world, kiosk):
    ada = issue(redis_client, world.student)
    alan = issue(redis_client, world.classmate)
    kiosk.sign_in(ada)
    count = services.void_badges_for_people(db.session, redis_client,
                                            [world.student.id, world.other_student.id], "disabled")
    assert count == 1
    assert kiosk.browser.get("/badges/home").status_code == 302
    assert kiosk.scan(ada).status_code == 403
    assert kiosk.scan(alan).status_code == 200
    assert _active(world.student) == []


def test_voiding_many_people_voids_every_badge_even_when_redis_fails(redis_client, world):
    # The roster importer voids the badges of everyone it disabled, 500 people at a time. Redis
    # going away while their sessions end must not leave the later badges working.
    import redis

    from portal.devserver import free_port
    from portal.models import Person, Role
    now = datetime.now(timezone.utc)
    people = [Person(sourced_id=f"many{i}", role=Role.student, username=f"many{i}", given_name="M",
                     family_name="Any", preferred_name="", email="", student_number="", grades="01",
                     enabled=False, district_id=world.student.district_id) for i in range(501)]
    db.session.add_all(people)
    db.session.flush()
    db.session.add_all(Badge(person_id=p.id, school_id=world.school.id, token_hash=f"{p.id:064d}",
                             kind=BadgeKind.permanent, issued_at=now, expires_at=now + timedelta(days=9))
                       for p in people)
    db.session.commit()
    gone = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    with pytest.raises(redis.RedisError):
        services.void_badges_for_people(db.session, gone, [p.id for p in people], "disabled")
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Badge)
                             .where(Badge.revoked_at.is_(None))) == 0


def test_removed_student_takes_their_badges_along(redis_client, world):
    issue(redis_client, world.student)
    db.session.delete(world.student)
    db.session.commit()
    assert db.session.scalar(select(Badge)
                             .where(Badge.person_id == world.student.id)) is None


@pytest.mark.parametrize("issued, expires", [
    (datetime(2026, 3, 1, 12, tzinfo=timezone.utc), datetime(2026, 8, 1, tzinfo=timezone.utc)),
    (datetime(2026, 7, 31, 23, tzinfo=timezone.utc), datetime(2026, 8, 1, tzinfo=timezone.utc)),
    (datetime(2026, 8, 15, 8, tzinfo=timezone.utc), datetime(2027, 8, 1, tzinfo=timezone.utc)),
])
def test_badge_expires_after_july_31_by_default(redis_client, world, issued, expires):
    badge = issue_badge(db.session, redis_client, world.student, clock=lambda: issued).badge
    assert badge.expires_at == expires


def test_school_expiry_overrides_the_setting(redis_client, world):
    from portal.badges.policy import set_policy
    set_policy(db.session, world.school, expires_on="06-15")
    issued = datetime(2026, 9, 1, tzinfo=timezone.utc)
    badge = issue_badge(db.session, redis_client, world.student, clock=lambda: issued,
                        default_expires="07-31").badge
    assert badge.expires_at == datetime(2027, 6, 16, tzinfo=timezone.utc)


def test_expired_badge_is_refused(redis_client, world, kiosk, clock):
    token = issue(redis_client, world.student, clock=clock, default_expires="30d")
    clock.advance(days=29, hours=23)
    assert kiosk.scan(token).status_code == 200
    clock.advance(hours=1)
    assert kiosk.scan(token).status_code == 403


def test_temporary_badge_works_for_its_hours_beside_the_permanent_card(redis_client, world, kiosk,
                                                                       clock):
    card = issue(redis_client, world.student, clock=clock)
    temporary = issue(redis_client, world.student, clock=clock, temporary_hours=3)
    assert {b.kind for b in _active(world.student)} == {BadgeKind.permanent, BadgeKind.temporary}
    assert kiosk.scan(card).status_code == 200
    assert kiosk.scan(temporary).status_code == 200
    clock.advance(hours=2, minutes=59)
    assert kiosk.scan(temporary).status_code == 200
    clock.advance(minutes=1)
    assert kiosk.scan(temporary).status_code == 403
    assert kiosk.scan(card).status_code == 200


def test_second_temporary_badge_replaces_the_first(redis_client, world, kiosk):
    first = issue(redis_client, world.student, temporary_hours=2)
    second = issue(redis_client, world.student, temporary_hours=2)
    assert kiosk.scan(first).status_code == 403
    assert kiosk.scan(second).status_code == 200


@pytest.mark.parametrize("hours", [0, 13, -1])
def test_temporary_badge_lasts_one_to_twelve_hours(redis_client, world, hours):
    with pytest.raises(BadgeError):
        issue(redis_client, world.student, temporary_hours=hours)


def test_teacher_issues_a_temporary_badge_over_http(app, redis_client, world, clock):
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    answer = staff_post(teacher, csrf, f"/badges/students/{world.student.id}/issue", hours=4)
    assert answer.json["kind"] == "temporary"
    assert datetime.fromisoformat(answer.json["expires_at"]) == clock.now + timedelta(hours=4)


def _teacher_issues(app, world, **data):
    """t.four asks for a badge for world.student over HTTP, with `data` as its JSON body."""
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    return staff_post(teacher, csrf, f"/badges/students/{world.student.id}/issue", **data)


@pytest.mark.parametrize("hours", ["1.5", "-2", " 3", "3 ", "", "0", "13", "three", "²", "１",
                                   "99999999999999999999", None, True, 2.0, [3]])
def test_malformed_hours_are_refused_and_the_card_keeps_working(app, redis_client, world, kiosk,
                                                                hours):
    card = issue(redis_client, world.student)
    answer = _teacher_issues(app, world, hours=hours)
    assert answer.status_code == 400 and "token" not in answer.json
    assert answer.json["error"] == "A temporary badge lasts 1 to 12 hours"
    assert len(_active(world.student)) == 1
    assert kiosk.scan(card).status_code == 200


def test_malformed_hours_in_a_form_are_refused(app, redis_client, world, kiosk):
    card = issue(redis_client, world.student)
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    answer = teacher.post(f"/badges/students/{world.student.id}/issue",
                          data={"hours": "1.5", "csrf_token": csrf})
    assert answer.status_code == 400
    assert "1 to 12 hours" in answer.get_data(as_text=True)
    assert kiosk.scan(card).status_code == 200


@pytest.mark.parametrize("body", ['{"hours": "1.5"', '[4]', '"4"', "null"])
def test_a_body_that_is_not_a_json_object_is_refused(app, redis_client, world, kiosk, body):
    card = issue(redis_client, world.student)
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    answer = teacher.post(f"/badges/students/{world.student.id}/issue", data=body,
                          content_type="application/json",
                          headers={"X-CSRFToken": csrf, "Accept": "application/json"})
    assert answer.status_code == 400 and answer.json["error"] == "Send the fields as a JSON object"
    assert kiosk.scan(card).status_code == 200


@pytest.mark.parametrize("school", ["", "1.5", "²", "abc", None, True, -1, "9999999999"])
def test_malformed_school_is_refused_and_the_card_keeps_working(app, redis_client, world, kiosk,
                                                                school):
    card = issue(redis_client, world.student)
    answer = _teacher_issues(app, world, school=school)
    assert answer.status_code == 400 and answer.json["error"] == "That school number isn't right"
    assert kiosk.scan(card).status_code == 200


def test_teacher_names_the_school_of_a_new_badge(app, world):
    answer = _teacher_issues(app, world, school=str(world.school.id), hours=2)
    assert answer.status_code == 201 and answer.json["school_id"] == world.school.id


def test_issue_without_hours_still_makes_a_permanent_card(app, redis_client, world, kiosk):
    card = issue(redis_client, world.student)
    answer = _teacher_issues(app, world)
    assert answer.status_code == 201 and answer.json["kind"] == "permanent"
    assert kiosk.scan(card).status_code == 403
    assert kiosk.scan(answer.json["token"]).status_code == 200


def test_password_reset_leaves_badges_alone(redis_client, world, kiosk):
    token = issue(redis_client, world.student)
    set_password(db.session, redis_client, world.student, "a brand new password")
    assert len(_active(world.student)) == 1
    assert kiosk.sign_in(token).status_code == 302


def test_staff_cannot_get_a_badge(redis_client, world):
    with pytest.raises(BadgeError):
        issue(redis_client, world.teacher)


def test_section_sheet_issue_covers_badge_grades_only(redis_client, world):
    from portal.badges.policy import set_policy
    set_policy(db.session, world.school, grades="01,02")
    plan = services.plan_section_badges(db.session, world.section)
    issued = services.issue_planned(db.session, plan, [mint_token() for _ in plan.students])
    assert [i.person.username for i in issued] == ["ada", "alan"]  # family name order
    assert all(looks_like_badge(i.token) for i in issued)


@pytest.mark.parametrize("zone, utc_end", [
    ("Pacific/Honolulu", datetime(2027, 6, 13, 10, tzinfo=timezone.utc)),
    ("America/Chicago", datetime(2027, 6, 13, 5, tzinfo=timezone.utc)),
    ("Australia/Sydney", datetime(2027, 6, 12, 14, tzinfo=timezone.utc)),
    ("UTC", datetime(2027, 6, 13, tzinfo=timezone.utc)),
])
def test_the_last_school_day_ends_at_the_districts_midnight(redis_client, world, zone, utc_end):
    from zoneinfo import ZoneInfo
    issued = datetime(2026, 9, 1, 15, tzinfo=timezone.utc)
    badge = issue_badge(db.session, redis_client, world.student, clock=lambda: issued,
                        default_expires="06-12", zone=ZoneInfo(zone)).badge
    assert badge.expires_at == utc_end
    from portal.badges.expiry import last_day
    assert last_day(badge.expires_at, ZoneInfo(zone)).isoformat() == "2027-06-12"
    # The badge works all of Friday June 12 there, and not a minute of Saturday.
    local = badge.expires_at.astimezone(ZoneInfo(zone))
    assert (local.year, local.month, local.day, local.hour, local.minute) == (2027, 6, 13, 0, 0)


def test_the_class_page_shows_times_where_the_district_is(app, redis_client, world, settings):
    from dataclasses import replace

    from tests.badges.test_teacher_pages import _signed_in, _text_of
    app.config["SETTINGS"] = replace(settings, timezone="America/Chicago")
    issue_badge(db.session, redis_client, world.student, clock=lambda: datetime(2026, 9, 1, tzinfo=timezone.utc),
                default_expires="06-12", zone=app.config["SETTINGS"].zone)
    issue(redis_client, world.classmate, temporary_hours=3)
    page = _text_of(_signed_in(app, world.teacher).get(f"/teacher/sections/{world.section.id}")
                    .get_data(as_text=True))
    assert "card until Jun 12, 2027" in page
    assert " CST" in page or " CDT" in page
    assert " UTC" not in page


def test_where_midnight_is_skipped_the_last_day_is_still_the_last_school_day():
    # Beirut's clocks jump from 00:00 to 01:00 on March 28, 2027: the badge ends at 01:00, and
    # the teacher page must still say March 27.
    from zoneinfo import ZoneInfo

    from portal.badges.expiry import last_day, permanent_expiry
    beirut = ZoneInfo("Asia/Beirut")
    end = permanent_expiry(datetime(2026, 9, 1, tzinfo=timezone.utc), "03-27", beirut)
    assert end == datetime(2027, 3, 27, 22, tzinfo=timezone.utc)
    assert last_day(end, beirut).isoformat() == "2027-03-27"


def test_the_pages_last_day_filter_reads_skipped_midnights_right_too(app, settings):
    from dataclasses import replace
    app.config["SETTINGS"] = replace(settings, timezone="Asia/Beirut")
    end = datetime(2027, 3, 27, 22, tzinfo=timezone.utc)
    last_day = app.jinja_env.filters["last_day"]
    assert last_day(end).isoformat() == "2027-03-27"
