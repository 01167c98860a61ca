"""A student at two schools has a card for each (a classroom device accepts only its own school's
badge), and each school's staff make, replace, void and see only their school's card. Found by
review: a Maple teacher's new card voided the one Oak's teacher had given the student."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.db import db
from portal.models import Badge, BadgeKind, PersonSchool, Role
from tests.badges.conftest import enroll_kiosk, issue, login, new_client, staff_post
from tests.badges.test_teacher_pages import _form_post, _text_of


def _at_two_schools(world, roster):
    """Ada, in Room 4 at Maple (Tess's class), is also in Room 9 at Oak (Nina's class)."""
    from portal.models import Enrollment, Section
    room9 = db.session.scalar(select(Section).where(Section.sourced_id == "room9"))
    db.session.add(PersonSchool(person_id=world.student.id, school_id=world.other_school.id))
    db.session.add(Enrollment(sourced_id="ada-room9", person_id=world.student.id, section_id=room9.id,
                              role="student"))
    db.session.commit()
    roster.person("t.nine", role=Role.teacher, schools=[world.other_school], sections=[room9],
                  given="Nina", family="Nine")


def _signed_in(app, username):
    client = new_client(app)
    return client, login(client, username)


def _working(person) -> dict[int, list[str]]:
    """School id -> the kinds of the person's badges that work there now."""
    db.session.expire_all()
    found: dict[int, list[str]] = {}
    for badge in db.session.scalars(select(Badge).where(Badge.person_id == person.id)
                                    .order_by(Badge.id)):
        if badge.usable_at(datetime.now(timezone.utc)):
            found.setdefault(badge.school_id, []).append(badge.kind.value)
    return found


def test_each_school_issues_its_own_card_and_leaves_the_others(app, world, roster, redis_client):
    _at_two_schools(world, roster)
    maple, oak = world.school, world.other_school
    nina, nina_csrf = _signed_in(app, "t.nine")
    tess, tess_csrf = _signed_in(app, "t.four")
    oak_card = staff_post(nina, nina_csrf, f"/badges/students/{world.student.id}/issue", school=oak.id)
    assert oak_card.status_code == 201 and oak_card.json["school_id"] == oak.id
    maple_card = staff_post(tess, tess_csrf, f"/badges/students/{world.student.id}/issue")
    assert maple_card.status_code == 201 and maple_card.json["school_id"] == maple.id
    assert _working(world.student) == {maple.id: ["permanent"], oak.id: ["permanent"]}
    oak_kiosk, maple_kiosk = enroll_kiosk(app, redis_client, oak), enroll_kiosk(app, redis_client, maple)
    assert oak_kiosk.scan(oak_card.json["token"]).status_code == 200
    assert maple_kiosk.scan(maple_card.json["token"]).status_code == 200
    # Replacing Maple's card, and a temporary badge at each school, leave Oak's card alone.
    again = staff_post(tess, tess_csrf, f"/badges/students/{world.student.id}/issue", school=maple.id)
    assert again.status_code == 201
    assert maple_kiosk.scan(maple_card.json["token"]).status_code == 403
    assert staff_post(tess, tess_csrf, f"/badges/students/{world.student.id}/issue",
                      hours=2).status_code == 201
    assert staff_post(nina, nina_csrf, f"/badges/students/{world.student.id}/issue", school=oak.id,
                      hours=2).status_code == 201
    assert _working(world.student) == {maple.id: ["permanent", "temporary"],
                                       oak.id: ["permanent", "temporary"]}
    assert oak_kiosk.scan(oak_card.json["token"]).status_code == 200
    # The database holds one active badge of each kind per student and school.
    card = db.session.scalar(select(Badge).where(
        Badge.person_id == world.student.id, Badge.school_id == oak.id, Badge.kind == BadgeKind.permanent,
        Badge.revoked_at.is_(None)))
    db.session.add(Badge(person_id=world.student.id, school_id=oak.id, token_hash="0" * 64,
                         kind=BadgeKind.permanent, issued_at=card.issued_at, expires_at=card.expires_at))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_a_teacher_voids_and_sees_only_their_schools_card(app, world, roster, redis_client):
    _at_two_schools(world, roster)
    maple, oak = world.school, world.other_school
    oak_token = issue(redis_client, world.student, school=oak)
    issue(redis_client, world.student, school=maple)
    tess, csrf = _signed_in(app, "t.four")
    seen = tess.get(f"/badges/students/{world.student.id}").json["badges"]
    assert [b["school_id"] for b in seen] == [maple.id]      # not Oak's card, nor where it was used
    refused = staff_post(tess, csrf, f"/badges/students/{world.student.id}/void", school=oak.id)
    assert refused.status_code == 403
    assert _working(world.student) == {maple.id: ["permanent"], oak.id: ["permanent"]}
    # Without a school: the cards of the schools the teacher looks after, Maple's alone.
    voided = staff_post(tess, csrf, f"/badges/students/{world.student.id}/void")
    assert voided.status_code == 200 and voided.json == {"students": 1}
    assert _working(world.student) == {oak.id: ["permanent"]}
    assert enroll_kiosk(app, redis_client, oak).scan(oak_token).status_code == 200
    assert staff_post(tess, csrf, f"/badges/students/{world.student.id}/void").json == {"students": 0}
    nina, nina_csrf = _signed_in(app, "t.nine")
    assert staff_post(nina, nina_csrf, f"/badges/students/{world.student.id}/void",
                      school=oak.id).json == {"students": 1}
    assert _working(world.student) == {}


def test_the_class_page_shows_and_changes_its_own_schools_card(app, world, roster, redis_client):
    _at_two_schools(world, roster)
    maple, oak = world.school, world.other_school
    issue(redis_client, world.student, school=oak)
    page = f"/teacher/sections/{world.section.id}"
    tess, _ = _signed_in(app, "t.four")
    html = tess.get(page).get_data(as_text=True)
    row = _text_of(re.search(rf'<tr id="student-{world.student.id}">(.*?)</tr>', html, re.S).group(1))
    assert "no card" in row and "Void badge" not in row and "Print a card" in row
    assert f'name="school" value="{maple.id}"' in html
    # A district admin of both schools prints from Maple's class page: Maple's card, Oak's stays.
    district, _ = _signed_in(app, "district")
    made = _form_post(district, f"/badges/students/{world.student.id}/issue", back=page,
                      school=str(maple.id))
    assert made.status_code == 201, made.get_data(as_text=True)[:300]
    assert _working(world.student) == {maple.id: ["permanent"], oak.id: ["permanent"]}
    row = _text_of(re.search(rf'<tr id="student-{world.student.id}">(.*?)</tr>',
                             tess.get(page).get_data(as_text=True), re.S).group(1))
    assert "card until" in row and "Void badge" in row
    assert _form_post(tess, f"/badges/students/{world.student.id}/void", back=page,
                      school=str(maple.id)).status_code == 303
    assert _working(world.student) == {oak.id: ["permanent"]}


def test_a_class_sheet_or_void_leaves_the_other_schools_card(app, world, roster, redis_client, runner):
    _at_two_schools(world, roster)
    maple, oak = world.school, world.other_school
    oak_token = issue(redis_client, world.student, school=oak)
    tess, csrf = _signed_in(app, "t.four")
    sheet = tess.post(f"/badges/sections/{world.section.id}/sheet",
                      data={"paper": "letter", "csrf_token": csrf})
    assert sheet.status_code == 200 and sheet.headers["Content-Type"] == "application/pdf"
    assert _working(world.student) == {maple.id: ["permanent"], oak.id: ["permanent"]}
    assert staff_post(tess, csrf, f"/badges/sections/{world.section.id}/void").status_code == 200
    assert _working(world.student) == {oak.id: ["permanent"]}
    assert enroll_kiosk(app, redis_client, oak).scan(oak_token).status_code == 200
    # The operator's command voids every card of the student, at each school.
    issue(redis_client, world.student, school=maple)
    result = runner.invoke(args=["badges", "void", "--student", "ada"])
    assert result.exit_code == 0 and "voided the badges of 1 student" in result.output
    assert _working(world.student) == {}


def test_scans_of_another_schools_voided_card_are_that_schools_to_see(app, world, roster, redis_client):
    # Found by review: the reuse alerts named scans of Ada's voided Oak card, and Oak's device, to
    # Maple's teacher.
    from datetime import timedelta

    from portal import audit
    from portal.models import Person
    from portal.teacher.classes import recent_reuse
    _at_two_schools(world, roster)
    ada = db.session.get(Person, world.student.id)
    for school in (world.school, world.other_school):
        audit.record("badge_voided_reuse", person=ada, commit=True, data={
            "badge_id": 5, "device_id": None, "via": "browser", "school_id": school.id, "reason": "lost"})
    since = datetime.now(timezone.utc) - timedelta(days=1)
    tess = db.session.get(Person, world.teacher.id)
    nina = db.session.scalar(select(Person).where(Person.username == "t.nine"))
    assert len(recent_reuse(db.session, tess, since)) == 1
    assert len(recent_reuse(db.session, nina, since)) == 1
    assert len(recent_reuse(db.session, db.session.get(Person, world.district_admin.id), since)) == 2
    # The district's log shows the browser scan without a device that never was.
    text = _text_of(_signed_in(app, "district")[0].get("/admin/log").get_data(as_text=True))
    assert "None" not in text and "badge number: 5; via: browser" in text


def test_a_teacher_at_both_schools_acts_only_on_the_card_where_she_teaches_the_student(
        app, world, roster, redis_client):
    # Found by review: Tess, at Maple and Oak, teaches Ada at Maple only (her Oak class is
    # another). Ada's Oak card is Nina's to make and void; Tess saw it, replaced it (Nina's card
    # stopped at Oak's kiosk) and voided it with a void that named no school.
    from datetime import timedelta

    from portal import audit
    from portal.models import Enrollment, Person
    from portal.teacher.classes import recent_reuse
    _at_two_schools(world, roster)
    maple, oak = world.school, world.other_school
    room10 = roster.section(oak, "room10", "Room 10 (Oak art)", grades="01")
    db.session.add(PersonSchool(person_id=world.teacher.id, school_id=oak.id))
    db.session.add(Enrollment(sourced_id="tess-room10", person_id=world.teacher.id, section_id=room10.id,
                              role="teacher"))
    db.session.commit()
    nina, nina_csrf = _signed_in(app, "t.nine")
    tess, tess_csrf = _signed_in(app, "t.four")
    oak_card = staff_post(nina, nina_csrf, f"/badges/students/{world.student.id}/issue", school=oak.id)
    assert oak_card.status_code == 201
    status = tess.get(f"/badges/students/{world.student.id}", headers={"Accept": "application/json"})
    assert status.status_code == 200 and [b for b in status.json["badges"] if b["school_id"] == oak.id] == []
    assert staff_post(tess, tess_csrf, f"/badges/students/{world.student.id}/issue",
                      school=oak.id).status_code == 403
    assert staff_post(tess, tess_csrf, f"/badges/students/{world.student.id}/void",
                      school=oak.id).status_code == 403
    # With no school named, she still makes and voids the card of the school where she teaches Ada.
    assert staff_post(tess, tess_csrf, f"/badges/students/{world.student.id}/issue").json["school_id"] == maple.id
    assert staff_post(tess, tess_csrf, f"/badges/students/{world.student.id}/void").status_code == 200
    assert _working(world.student) == {oak.id: ["permanent"]}
    assert enroll_kiosk(app, redis_client, oak).scan(oak_card.json["token"]).status_code == 200
    # Scans of Ada's voided Oak card are Nina's to see, not Tess's.
    ada = db.session.get(Person, world.student.id)
    audit.record("badge_voided_reuse", person=ada, commit=True, data={
        "badge_id": 5, "device_id": None, "via": "browser", "school_id": oak.id, "reason": "lost"})
    since = datetime.now(timezone.utc) - timedelta(days=1)
    assert recent_reuse(db.session, db.session.get(Person, world.teacher.id), since) == []
    nina_person = db.session.scalar(select(Person).where(Person.username == "t.nine"))
    assert len(recent_reuse(db.session, nina_person, since)) == 1


def test_reuse_alerts_ask_who_may_see_them_in_a_few_statements_however_many_students(
        app, world, roster, redis_client):
    # Found by review of the check above: it asked once per student (203 statements for 200
    # alerts on a teacher's page); a teacher's pairs of student and school come in one statement,
    # an admin's schools once each.
    from datetime import timedelta

    from sqlalchemy import event

    from portal import audit
    from portal.models import Person
    from portal.teacher.classes import recent_reuse
    kids = [roster.person(f"kid{i}", schools=[world.school], sections=[world.section], grades="01")
            for i in range(40)]
    for kid in kids:
        audit.record("badge_voided_reuse", person=kid, commit=False, data={
            "badge_id": 1, "device_id": None, "via": "browser", "school_id": world.school.id})
    db.session.commit()
    since = datetime.now(timezone.utc) - timedelta(days=1)
    for actor_id in (world.teacher.id, world.school_admin.id, world.district_admin.id):
        actor = db.session.get(Person, actor_id)
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            alerts = recent_reuse(db.session, actor, since)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert len(alerts) == 40 and len(statements) <= 5, (actor.username, len(statements))
