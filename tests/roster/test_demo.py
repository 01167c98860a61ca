"""The demo district: `portal demo`, its fixed sign-ins, and the bundle writer behind it."""
from __future__ import annotations

import hashlib
import os
import re
import stat
from datetime import timedelta

from sqlalchemy import func, select

from portal.db import db
from portal.models import App, Enrollment, Person, Section
from portal.roster.demo import DEMO_ADMIN, DEMO_STUDENT, DEMO_TEACHER, add_demo_badge, write_bundle
from tests.badges.test_sheets import read_sheet
from tests.roster.conftest import snapshot


def tiles(client) -> str:
    page = client.get("/")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_demo_accounts_sign_in_and_see_their_tiles(runner, client, auth):
    # No db_session here: an app context held across requests would keep `g`, and with it
    # the signed-in user, from one request to the next.
    result = runner.invoke(args=["demo", "--students", "60"])
    assert result.exit_code == 0, result.output
    assert "demo.student  sunny-otter-42" in result.output

    assert auth.login(DEMO_STUDENT.username, DEMO_STUDENT.password).status_code == 302
    page = tiles(client)
    assert f"Hi, {DEMO_STUDENT.given_name}!" in page
    for name in ("Library", "Math Practice", "Typing Club"):
        assert f'<span class="name">{name}</span>' in page
    assert "Teacher Resources" not in page
    auth.logout()

    assert auth.login(DEMO_TEACHER.username, DEMO_TEACHER.password).status_code == 302
    page = tiles(client)
    assert "Teacher Resources" in page and "Math Practice" not in page
    auth.logout()

    assert auth.login(DEMO_ADMIN.username, DEMO_ADMIN.password).status_code == 302
    assert "Library" in tiles(client)


def test_demo_student_is_in_the_demo_teachers_homeroom(runner, db_session):
    assert runner.invoke(args=["demo", "--students", "60"]).exit_code == 0
    admin = db_session.scalar(select(Person).where(Person.username == DEMO_ADMIN.username))
    assert admin.role.value == "district_admin"

    def sections_of(username, role):
        return set(db_session.scalars(
            select(Enrollment.section_id).join(Person, Person.id == Enrollment.person_id)
            .where(Person.username == username, Enrollment.role == role)))

    shared = sections_of("demo.student", "student") & sections_of("demo.teacher", "teacher")
    homeroom = db_session.scalar(select(Section).where(Section.id.in_(shared)))
    assert homeroom.title == "Grade 2 Homeroom" and homeroom.grades == "02"
    classmates = db_session.scalar(select(func.count(Enrollment.id)).where(
        Enrollment.section_id == homeroom.id, Enrollment.role == "student"))
    assert classmates >= 3
    student = db_session.scalar(select(Person).where(Person.username == "demo.student"))
    assert student.grades == "02" and student.password_hash
    others = db_session.scalar(select(func.count(Person.id)).where(Person.password_hash.is_not(None)))
    assert others == 3  # only the demo accounts get passwords


def test_demo_again_changes_nothing(runner, db_session):
    assert runner.invoke(args=["demo", "--students", "60"]).exit_code == 0
    before = snapshot(db_session)

    again = runner.invoke(args=["demo", "--students", "60"])

    assert again.exit_code == 0, again.output
    assert "nothing changed" in again.output
    assert snapshot(db_session) == before
    assert db_session.scalar(select(func.count(App.id))) == 4


def _digest(folder) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir())}


def test_demo_bundle_is_the_same_from_the_same_seed(tmp_path):
    write_bundle(tmp_path / "a", 200)
    write_bundle(tmp_path / "b", 200)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_demo_bundle_takes_its_size_from_the_options(tmp_path):
    sizes = write_bundle(tmp_path / "big", 1300, sections=400, per_student=4)

    assert (sizes.students, sizes.sections) == (1300, 400)
    assert sizes.enrollments == 1300 * 4 + 400  # each section also has its teacher
    assert sizes.schools == 3
    assert sizes.teachers == 30 + 15 + 20  # one per 20 students in each school


def test_demo_badge_is_a_real_badge_the_browser_scanner_takes(runner, app, redis_client, tmp_path):
    # `make run` writes it, so a visitor can try /badge with the demo student's card.
    assert runner.invoke(args=["demo", "--students", "60"]).exit_code == 0
    with app.app_context():
        settings = app.config["SETTINGS"]
        pdf = add_demo_badge(db.session, redis_client, tmp_path / "demo-badge.pdf",
                             default_expires=settings.badge_expires, zone=settings.zone)
        db.session.remove()
    assert stat.S_IMODE(pdf.stat().st_mode) == 0o600
    [(codes, text)] = read_sheet(pdf)
    assert text.startswith(f"{DEMO_STUDENT.given_name} {DEMO_STUDENT.family_name[0]}.")

    browser = app.test_client()
    page = browser.get("/badge").get_data(as_text=True)
    assert "Getting the camera ready" in page  # the demo school reads badges here
    csrf = re.search(r'data-csrf="([^"]+)"', page).group(1)
    answer = browser.post("/badge/scan", json={"token": codes[0]}, headers={"X-CSRFToken": csrf})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert f"Hi, {DEMO_STUDENT.given_name}!" in browser.get(answer.json["next"]).get_data(as_text=True)


def test_demo_badge_ends_as_the_districts_badges_do_and_is_renewed_once_it_has(runner, app, redis_client,
                                                                                tmp_path):
    # It ended on 07-31 at Greenwich's midnight whatever PORTAL_BADGE_EXPIRES and PORTAL_TIMEZONE said.
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from portal.models import Badge
    from portal.roster.demo import renew_demo_badge
    from tests.badges.conftest import FakeClock
    assert runner.invoke(args=["demo", "--students", "20"]).exit_code == 0
    clock, chicago, path = FakeClock(), ZoneInfo("America/Chicago"), tmp_path / "demo-badge.pdf"
    clock.now = datetime(2026, 3, 4, 2, 0, tzinfo=timezone.utc)
    ends = {"default_expires": "07-31", "zone": chicago, "clock": clock}

    def written(result):
        # The file is dated by the computer's clock, the card by the test's: set the file's to
        # the test's, as if it were written when its card was made (whatever today's date).
        if result is not None:
            os.utime(path, (clock.now.timestamp(), clock.now.timestamp()))
        return result

    with app.app_context():
        written(add_demo_badge(db.session, redis_client, path, **ends))
        card = db.session.scalar(select(Badge))
        assert card.expires_at == datetime(2026, 8, 1, 5, 0, tzinfo=timezone.utc)   # Chicago's midnight
        assert renew_demo_badge(db.session, redis_client, path, **ends) is None      # it still works
        clock.now = datetime(2026, 8, 1, 5, 0, tzinfo=timezone.utc)
        assert written(renew_demo_badge(db.session, redis_client, path, **ends)) == path
        renewed = db.session.scalar(select(Badge).where(Badge.revoked_at.is_(None)))
        assert renewed.expires_at == datetime(2027, 8, 1, 5, 0, tzinfo=timezone.utc)
        path.unlink()                                  # the only copy of the badge's token
        assert written(renew_demo_badge(db.session, redis_client, path, **ends)) == path and path.is_file()
        # A visitor tries the teacher's Replace card: the file's card stops; the next start
        # writes a new one, and leaves the school's badge settings as an admin set them.
        from portal.badges.policy import policy_for, set_policy
        from portal.badges.services import issue_badge
        issue_badge(db.session, redis_client, card.person, school=card.school, **ends)
        set_policy(db.session, card.school, allow_browser_scanner=False)
        os.utime(path, (path.stat().st_atime, clock.now.timestamp() - 60))
        assert written(renew_demo_badge(db.session, redis_client, path, **ends)) == path
        assert not policy_for(db.session, card.school_id).allow_browser_scanner
        assert renew_demo_badge(db.session, redis_client, path, **ends) is None
        add_demo_badge(db.session, redis_client, path, default_expires="30d", zone=chicago, clock=clock)
        latest = db.session.scalar(select(Badge).where(Badge.revoked_at.is_(None)))
        assert latest.expires_at - latest.issued_at == timedelta(days=30)
        db.session.remove()


def test_a_district_too_large_to_build_is_refused_at_once(tmp_path):
    """`--students` past MAX_DEMO_STUDENTS is refused in one line before anything is built. Run
    as a separate process with its memory and time bounded, so that a lost cap fails this test
    instead of filling the machine's memory."""
    import os
    import resource
    import subprocess
    import sys
    from pathlib import Path

    from portal.roster.demo import MAX_DEMO_STUDENTS

    def bounded():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    env = {**os.environ, "PORTAL_INSTANCE_PATH": str(tmp_path / "instance"),
           "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path}/demo.db",
           "PORTAL_REDIS_URL": "redis://127.0.0.1:9/0"}     # nothing listens: nothing may be used
    portal = str(Path(sys.executable).parent / "portal")
    for command in ("demo", "dev"):
        for count in (str(MAX_DEMO_STUDENTS + 1), "9" * 19):
            result = subprocess.run([portal, command, "--students", count], env=env,
                                    capture_output=True, text=True, timeout=60, preexec_fn=bounded)
            assert result.returncode == 2, (command, count, result.stderr[-500:])
            assert "Traceback" not in result.stderr
            assert f"not in the range 20<=x<={MAX_DEMO_STUDENTS}" in result.stderr
    assert not (tmp_path / "demo.db").exists()


def test_demo_is_refused_in_production_unless_asked_for(app, runner, db_session):
    """Its admin, teacher and student have the passwords the README publishes."""
    import dataclasses
    app.config["SETTINGS"] = dataclasses.replace(app.config["SETTINGS"], env="production")
    result = runner.invoke(args=["demo", "--students", "20"])
    assert result.exit_code == 1 and result.exception.__class__ is SystemExit
    assert result.output.strip().splitlines() == [
        "Error: PORTAL_ENV is production and the demo's sign-ins (a district admin among them) have "
        "published passwords: nothing loaded (--yes-in-production if this portal is a demo)"]
    assert db_session.scalar(select(func.count(Person.id))) == 0
    result = runner.invoke(args=["demo", "--students", "20", "--yes-in-production"])
    assert result.exit_code == 0, result.output
    assert db_session.scalar(select(Person).where(Person.username == DEMO_ADMIN.username)) is not None
