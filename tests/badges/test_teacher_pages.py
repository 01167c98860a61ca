"""The teacher pages (portal.teacher): my classes, a class's badges, and the forms on them,
through the real routes with a signed-in teacher or admin, a real database and Redis."""
from __future__ import annotations

import html
import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from portal.db import db
from portal.models import Badge, BadgeFactor
from tests.accessible import CONTROLS, accessible_name, page_of, visible_text
from tests.badges.conftest import csrf_from, enroll_kiosk, issue, login, new_client
from tests.badges.test_sheets import read_sheet


def _signed_in(app, person):
    client = new_client(app)
    login(client, person.username)
    return client


def _text(response) -> str:
    """The page's words, without tags."""
    return _text_of(response.get_data(as_text=True))


def _form_post(client, path, back=None, **fields):
    """Post a form of the teacher pages as from `back` (My classes) open now: the badge policy
    form carries the policy that page shows."""
    csrf = csrf_from(client, back or "/teacher/")
    if path.endswith("/badge-policy") and "expect" not in fields:
        shown = _policy_shown(client, back or "/teacher/")
        if shown is not None:
            fields["expect"] = shown
    data = {"csrf_token": csrf, **fields}
    if back:
        data["next"] = back
    return client.post(path, data=data)


def _policy_shown(client, page):
    """The fingerprint of the badge policy the page shows, as its form sends it (None: no form)."""
    form = re.search(r'<form [^>]*class="policy"[^>]*>(.*?)</form>', client.get(page).get_data(as_text=True), re.S)
    found = re.search(r'name="expect" value="([^"]*)"', form.group(1)) if form else None
    return found.group(1) if found else None


def _working(person) -> list[Badge]:
    db.session.expire_all()
    return [b for b in db.session.scalars(select(Badge).where(Badge.person_id == person.id))
            if b.usable_at(datetime.now(timezone.utc))]


def test_staff_have_a_link_to_their_classes_and_students_have_none(app, world):
    teacher = _signed_in(app, world.teacher)
    assert 'href="/teacher/"' in teacher.get("/").get_data(as_text=True)
    student = _signed_in(app, world.student)
    assert "/teacher/" not in student.get("/").get_data(as_text=True)
    assert student.get("/teacher/").status_code == 403
    assert student.get(f"/teacher/sections/{world.section.id}").status_code == 403
    visitor = new_client(app)
    assert visitor.get("/teacher/").status_code == 302  # to the sign-in page


def test_a_teacher_sees_their_own_classes_and_no_other(app, world):
    teacher = _signed_in(app, world.teacher)
    page = _text(teacher.get("/teacher/"))
    assert "My classes" in page and "Room 4" in page and "Room 5" not in page
    assert teacher.get(f"/teacher/sections/{world.section.id}").status_code == 200
    for other in (world.other_section.id, 999999):  # someone else's class, and none: the same answer
        assert teacher.get(f"/teacher/sections/{other}").status_code == 403
    for bad in ("abc", "-1", "1" * 40):
        assert teacher.get(f"/teacher/sections/{bad}").status_code == 404


def test_the_class_page_shows_each_students_badges(app, world, redis_client):
    issue(redis_client, world.student)
    issue(redis_client, world.classmate, temporary_hours=3)
    kiosk = enroll_kiosk(app, redis_client, world.school)
    device = kiosk_name(kiosk)
    token = issue(redis_client, world.student)
    assert kiosk.sign_in(token).status_code == 302
    teacher = _signed_in(app, world.teacher)
    response = teacher.get(f"/teacher/sections/{world.section.id}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert token not in html
    rows = {m.group(1): _text_of(m.group(2)) for m in
            re.finditer(r'<tr id="student-(\d+)">(.*?)</tr>', html, re.S)}
    ada, alan, katherine = (rows[str(p.id)] for p in (world.student, world.classmate, world.older_student))
    assert "card until" in ada and f"on {device}" in ada and "Void badge" in ada
    assert "no card" in alan and "temporary badge until" in alan and "never" in alan
    assert "no card" in katherine and "PIN: chosen at the next badge sign-in" in katherine
    assert str(world.other_student.id) not in rows  # Room 5


def test_the_class_page_says_when_a_card_scanned_too_often_works_again(app, world, redis_client,
                                                                        settings):
    # Found by review: a working card refused by its limit (scanned 10 times in 5 minutes) showed
    # as a working card, last used seconds ago: nothing said why the kiosk refused it.
    from dataclasses import replace
    from zoneinfo import ZoneInfo
    app.config["SETTINGS"] = replace(settings, badge_limit_per_badge="2 per 5 minutes",
                                     timezone="America/Chicago")
    kiosk = enroll_kiosk(app, redis_client, world.school)
    ada = issue(redis_client, world.student)
    alan = issue(redis_client, world.classmate, temporary_hours=3)
    assert [kiosk.scan(ada).status_code for _ in range(3)] == [200, 200, 403]
    assert [kiosk.scan(alan).status_code for _ in range(2)] == [200, 200]      # at its limit
    before = datetime.now(timezone.utc)
    html = _signed_in(app, world.teacher).get(f"/teacher/sections/{world.section.id}").get_data(as_text=True)
    rows = {m.group(1): _text_of(m.group(2)) for m in
            re.finditer(r'<tr id="student-(\d+)">(.*?)</tr>', html, re.S)}
    works_again = re.search(r'works again at <time datetime="([^"]+)">([^<]+)</time>', html)
    at = datetime.fromisoformat(works_again.group(1))
    assert 290 <= (at - before).total_seconds() <= 301
    assert works_again.group(2) == at.astimezone(ZoneInfo("America/Chicago")).strftime("%H:%M")
    assert "Scanned too often: works again at" in rows[str(world.student.id)]
    assert "Scanned too often" not in rows[str(world.classmate.id)]   # not refused (yet)
    assert "Scanned too often" not in rows[str(world.older_student.id)]


def test_the_class_page_lists_people_with_one_name_by_that_name(app, world, roster):
    # One name, given as a given name (Madonna) or as a family name (Suharto): in family name
    # order by that name (Madonna came first of all, as if her family name "" were one), shown
    # as it is, with no stray space.
    room4, maple = world.section, world.school
    roster.person("madonna", schools=[maple], sections=[room4], grades="01", given="Madonna", family="")
    roster.person("suharto", schools=[maple], sections=[room4], grades="01", given="", family="Suharto")
    html = _signed_in(app, world.teacher).get(f"/teacher/sections/{room4.id}").get_data(as_text=True)
    names = re.findall(r'<th scope="row">(.*?)<br>', html)
    assert names == ["Katherine Johnson", "Ada Lovelace", "Madonna", "Suharto", "Alan Turing"]


def test_the_class_page_says_who_printed_each_card_and_what_printing_does(app, world, redis_client,
                                                                           roster):
    from portal.badges.services import issue_badge
    from portal.models import Enrollment, Person
    art = roster.section(world.school, "art", "Art", grades="01")
    db.session.add(Enrollment(sourced_id="art-ada", person_id=world.student.id, section_id=art.id,
                              role="student"))
    db.session.commit()
    roster.person("t.art", role=world.teacher.role, schools=[world.school], sections=[art],
                  given="Arty", family="Art")
    arty = db.session.scalar(select(Person).where(Person.username == "t.art"))
    issue_badge(db.session, redis_client, db.session.merge(world.student), actor=arty)  # Art's
    issue(redis_client, world.classmate)                                              # a command's
    teacher = _signed_in(app, world.teacher)
    page = f"/teacher/sections/{world.section.id}"
    html_page = teacher.get(page).get_data(as_text=True)
    rows = {m.group(1): _text_of(m.group(2)) for m in
            re.finditer(r'<tr id="student-(\d+)">(.*?)</tr>', html_page, re.S)}
    assert re.search(r"card until \w+ \d+, \d{4} printed \w+ \d+, \d\d:\d\d \w+ by Arty Art",
                     rows[str(world.student.id)]), rows[str(world.student.id)]
    assert "by the command line" in rows[str(world.classmate.id)]
    assert "printed" not in rows[str(world.older_student.id)]
    text = _text_of(html_page)
    assert ("Prints a card for each student below who has none that works at Maple Elementary "
            "(1 student). Cards that work now are left as they are, whichever class printed them.") in text
    assert "Print badges for the 1 student without a card" in text
    assert ("Replace every card in this class This stops the 2 cards that work now for Room 4's "
            "students at Maple Elementary") in text
    assert "Some may have been printed by another class (homeroom, art, music, PE)" in text
    answer = _form_post(teacher, f"/badges/sections/{world.section.id}/sheet", back=page)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/pdf"
    text = _text(teacher.get(page))
    assert "Print badges for" not in text
    assert ("Every student of Room 4 who uses a badge has a card that works: there is nothing to "
            "print.") in text
    katherine = _text_of(re.search(rf'<tr id="student-{world.older_student.id}">(.*?)</tr>',
                                   teacher.get(page).get_data(as_text=True), re.S).group(1))
    assert "by you" in katherine


def test_each_rows_controls_name_their_student_for_a_screen_reader(app, world, redis_client):
    """A screen reader lists a page's buttons and fields by name: every row of the class page had
    a "New password" and a "for" (hours) that did not say whose they were. Each control of a row
    names its student now, and the page shows the same words as before."""
    issue(redis_client, world.student)                       # Replace card, Void badge
    issue(redis_client, world.classmate, temporary_hours=3)  # Print a card, Void badge
    teacher = _signed_in(app, world.teacher)
    page = page_of(teacher.get(f"/teacher/sections/{world.section.id}"))
    names = []
    for student in (world.student, world.classmate, world.older_student):
        row = page.get_element_by_id(f"student-{student.id}")
        summary = row.find(".//summary")
        assert accessible_name(summary, page) == f"New password for {student.display_name}"
        assert visible_text(summary) == "New password"
        hours = row.find(".//select")
        assert accessible_name(hours, page) == f"for how many hours ({student.display_name})"
        assert visible_text(page.xpath("//label[@for=$id]", id=hours.get("id"))[0]) == "for"
        controls = row.xpath(CONTROLS)
        assert len(controls) >= 6, [accessible_name(c, page) for c in controls]
        for control in controls:
            assert student.display_name in accessible_name(control, page), accessible_name(control, page)
        names += [accessible_name(c, page) for c in controls]
    assert len(names) == len(set(names)), names


def test_each_devices_stop_button_names_its_device(app, world, kiosk):
    principal = _signed_in(app, world.school_admin)
    page = page_of(principal.get(f"/teacher/?school={world.school.id}"))
    stop = page.get_element_by_id(f"device-{kiosk.device_id}").find(".//button")
    assert accessible_name(stop, page) == f"Stop this device: {kiosk_name(kiosk)}"
    assert visible_text(stop) == "Stop this device"


def _text_of(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def test_voiding_from_the_page_stops_the_card_and_comes_back_with_a_message(app, world, redis_client, kiosk):
    token = issue(redis_client, world.student)
    page = f"/teacher/sections/{world.section.id}"
    teacher = _signed_in(app, world.teacher)
    answer = _form_post(teacher, f"/badges/students/{world.student.id}/void", back=page)
    assert answer.status_code == 303 and answer.headers["Location"] == page
    assert "Ada Lovelace's badge no longer works." in _text(teacher.get(page))
    assert "no longer works" not in _text(teacher.get(page))  # said once
    assert _working(world.student) == []
    assert kiosk.scan(token).status_code == 403


def test_a_form_without_its_csrf_token_changes_nothing(app, world, redis_client, kiosk):
    token = issue(redis_client, world.student)
    teacher = _signed_in(app, world.teacher)
    for path in (f"/badges/students/{world.student.id}/void", f"/badges/sections/{world.section.id}/void",
                 f"/badges/students/{world.student.id}/issue"):
        answer = teacher.post(path, data={"next": f"/teacher/sections/{world.section.id}"})
        assert answer.status_code == 400
        assert "Traceback" not in answer.get_data(as_text=True)
    assert len(_working(world.student)) == 1
    assert kiosk.scan(token).status_code == 200


@pytest.mark.parametrize("back", ["//evil.example/teacher/", "https://evil.example/teacher/",
                                  "/teacher/../login", "/teacher/sections/1?x=1", "/teacher/sections/1/",
                                  "\\\\evil.example", "/teacher/sections/1\n", "javascript:alert(1)", ""])
def test_a_form_goes_back_only_to_a_teacher_page(app, world, redis_client, back):
    issue(redis_client, world.student)
    teacher = _signed_in(app, world.teacher)
    answer = _form_post(teacher, f"/badges/students/{world.student.id}/void", next=back)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/teacher/"


def test_voiding_a_class_from_the_page(app, world, redis_client):
    for person in (world.student, world.classmate, world.other_student):
        issue(redis_client, person)
    page = f"/teacher/sections/{world.section.id}"
    teacher = _signed_in(app, world.teacher)
    unticked = _form_post(teacher, f"/badges/sections/{world.section.id}/void", back=page)
    assert unticked.status_code == 400 and "Tick the box" in _text(unticked)
    assert len(_working(world.student)) == 1
    answer = _form_post(teacher, f"/badges/sections/{world.section.id}/void", back=page, confirm="yes")
    assert answer.status_code == 303
    assert "Room 4: the badges of 2 students no longer work." in _text(teacher.get(page))
    assert _working(world.student) == [] and _working(world.classmate) == []
    assert len(_working(world.other_student)) == 1  # Room 5
    # Someone else's class: refused, nothing changes.
    assert _form_post(teacher, f"/badges/sections/{world.other_section.id}/void",
                      back=page, confirm="yes").status_code == 403
    assert len(_working(world.other_student)) == 1


def test_a_temporary_badge_from_the_page_is_a_label_to_print_that_signs_in(app, world, redis_client, kiosk,
                                                                           tmp_path):
    card = issue(redis_client, world.student)
    teacher = _signed_in(app, world.teacher)
    answer = _form_post(teacher, f"/badges/students/{world.student.id}/issue",
                        back=f"/teacher/sections/{world.section.id}", hours="4")
    assert answer.status_code == 201, answer.get_data(as_text=True)[:300]
    assert answer.headers["Content-Type"] == "application/pdf"
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Content-Disposition"] == 'inline; filename="temporary-badge-ada-l.pdf"'
    pdf = tmp_path / "temporary.pdf"
    pdf.write_bytes(answer.data)
    [(codes, text)] = read_sheet(pdf)
    assert text.startswith("Ada L.\nTemporary until ")
    [token] = codes
    assert token != card
    assert kiosk.scan(token).status_code == 200
    assert kiosk.scan(card).status_code == 200  # the card in the pocket still works


@pytest.mark.parametrize("utc, hours, says", [
    ((2026, 10, 6, 14, 5), 4, "Temporary until 13:05"),        # 09:05 in Chicago, until 13:05
    ((2026, 10, 6, 22, 30), 8, "Temporary until Wed 01:30"),   # 17:30, until the next day
])
def test_a_temporary_badges_label_says_until_when_in_the_districts_time(app, world, redis_client,
                                                                        settings, clock, tmp_path,
                                                                        utc, hours, says):
    # Found by review: a temporary badge looked exactly like a card.
    from dataclasses import replace
    app.config["SETTINGS"] = replace(settings, timezone="America/Chicago")
    clock.now = datetime(*utc, tzinfo=timezone.utc)
    teacher = _signed_in(app, world.teacher)
    answer = _form_post(teacher, f"/badges/students/{world.student.id}/issue",
                        back=f"/teacher/sections/{world.section.id}", hours=str(hours))
    assert answer.status_code == 201
    pdf = tmp_path / "temporary.pdf"
    pdf.write_bytes(answer.data)
    [([token], text)] = read_sheet(pdf)
    assert text == f"Ada L.\n{says}"


def test_a_new_card_from_the_page_replaces_the_old_one(app, world, redis_client, kiosk, tmp_path):
    card = issue(redis_client, world.student)
    teacher = _signed_in(app, world.teacher)
    answer = _form_post(teacher, f"/badges/students/{world.student.id}/issue",
                        back=f"/teacher/sections/{world.section.id}", paper="a4")
    assert answer.status_code == 201
    pdf = tmp_path / "card.pdf"
    pdf.write_bytes(answer.data)
    [([token], _)] = read_sheet(pdf, "a4")
    assert kiosk.scan(token).status_code == 200
    assert kiosk.scan(card).status_code == 403


@pytest.mark.parametrize("fields", [{"hours": "13"}, {"hours": "four"}, {"hours": ""}, {"paper": "legal"}])
def test_a_bad_badge_form_says_why_and_changes_nothing(app, world, redis_client, kiosk, fields):
    card = issue(redis_client, world.student)
    teacher = _signed_in(app, world.teacher)
    answer = _form_post(teacher, f"/badges/students/{world.student.id}/issue", **fields)
    assert answer.status_code == 400
    assert answer.headers["Content-Type"].startswith("text/html")
    text = _text(answer)
    assert "Traceback" not in text
    assert ("1 to 12 hours" in text) if "hours" in fields else ("letter or A4" in text)
    assert [b.kind.value for b in _working(world.student)] == ["permanent"]
    assert kiosk.scan(card).status_code == 200


def test_unlock_and_forgotten_pin_from_the_page(app, world, redis_client):
    now = datetime.now(timezone.utc)
    db.session.add(BadgeFactor(person_id=world.older_student.id, pin_hash="x", wrong_tries=5,
                               locked_at=now, updated_at=now))
    db.session.commit()
    page = f"/teacher/sections/{world.section.id}"
    teacher = _signed_in(app, world.teacher)
    assert "locked: too many wrong tries" in _text(teacher.get(page))
    answer = _form_post(teacher, f"/badges/students/{world.older_student.id}/unlock", back=page)
    assert answer.status_code == 303
    text = _text(teacher.get(page))
    assert "Katherine Johnson can try again." in text and "locked:" not in text and "PIN chosen" in text
    answer = _form_post(teacher, f"/badges/students/{world.older_student.id}/reset-factor", back=page)
    assert answer.status_code == 303
    text = _text(teacher.get(page))
    assert "Katherine Johnson will choose a new one at their next badge sign-in." in text
    assert "PIN: chosen at the next badge sign-in" in text


def test_a_voided_badge_scanned_again_shows_on_the_teachers_pages(app, world, redis_client, kiosk):
    token = issue(redis_client, world.student)
    teacher = _signed_in(app, world.teacher)
    _form_post(teacher, f"/badges/students/{world.student.id}/void")
    assert kiosk.scan(token).status_code == 403
    device = kiosk_name(kiosk)
    for path in ("/teacher/", f"/teacher/sections/{world.section.id}"):
        text = _text(teacher.get(path))
        assert "Voided badges scanned again" in text
        assert f"Ada Lovelace 's old badge, on {device}" in text
    other = _signed_in(app, world.other_teacher)
    assert "Voided badges scanned again" not in _text(other.get("/teacher/"))


def kiosk_name(kiosk) -> str:
    from portal.models import KioskDevice
    db.session.expire_all()
    return db.session.get(KioskDevice, kiosk.device_id).name


def test_admins_choose_a_school_first(app, world, roster):
    principal = _signed_in(app, world.school_admin)
    text = _text(principal.get("/teacher/"))  # one school: its classes at once
    assert "Classes at Maple Elementary" in text and "Room 4" in text and "Room 5" in text
    assert principal.get(f"/teacher/?school={world.other_school.id}").status_code == 403
    assert principal.get(f"/teacher/sections/{world.section.id}").status_code == 200

    district = _signed_in(app, world.district_admin)
    text = _text(district.get("/teacher/"))
    assert "Schools" in text and "Maple Elementary" in text and "Oak Elementary" in text
    assert "Room 4" not in text
    text = _text(district.get(f"/teacher/?school={world.other_school.id}"))
    assert "Classes at Oak Elementary" in text and "Room 9" in text and "Room 4" not in text
    for bad in ("", "x", "999999", "-1", "1" * 40):
        assert district.get(f"/teacher/?school={bad}").status_code == 403


def test_scripts_still_get_json(app, world, redis_client):
    issue(redis_client, world.student)
    teacher = _signed_in(app, world.teacher)
    csrf = csrf_from(teacher, "/teacher/")
    answer = teacher.post(f"/badges/students/{world.student.id}/void", json={},
                          headers={"X-CSRFToken": csrf})
    assert answer.status_code == 200 and answer.json == {"students": 1}


def test_json_with_a_students_data_is_not_kept_in_the_browsers_cache(app, world, redis_client):
    # Found by review: the HTML pages were sent no-store, the same data as JSON was not.
    issue(redis_client, world.student)
    teacher = _signed_in(app, world.teacher)
    for path in (f"/badges/students/{world.student.id}", "/badges/reuse"):
        answer = teacher.get(path, headers={"Accept": "application/json"})
        assert answer.status_code == 200 and answer.is_json
        assert answer.headers["Cache-Control"] == "no-store", path
    assert "public" in teacher.get("/.well-known/openid-configuration").headers["Cache-Control"]


def _teacher_in_a_browser(browser, live_server, world):
    """A browser context signed in as the class's teacher, on the portal's home page."""
    context = browser.new_context(viewport={"width": 1024, "height": 768}, accept_downloads=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(live_server + "/login")
    page.fill("#username", world.teacher.username)
    page.fill("#password", "correct horse battery")
    page.click("button.primary")
    page.wait_for_url(live_server + "/")
    return context, page


class Sheets:
    """The badge sheets a browser context is sent (their PDFs, as the server sent them), and the
    tabs they open in. A sheet is shown inline, by the browser's PDF viewer, which keeps no copy
    of it a test could read: the context's requests for sheets go through here."""

    def __init__(self, context):
        self.pdfs: list[bytes] = []
        self.downloads: list = []
        self.tabs: list = []
        context.route("**/badges/**", self._keep)
        context.on("page", lambda tab: self.tabs.append(tab))
        context.on("page", lambda tab: tab.on("download", lambda d: self.downloads.append(d)))

    @staticmethod
    def real_focus(context, page) -> None:
        """Let `page` lose focus to a sheet's tab and get it back when that closes, as in a
        browser on a desk (Playwright tells every page it has the focus: its page would never
        hear that the teacher came back)."""
        context.new_cdp_session(page).send("Emulation.setFocusEmulationEnabled", {"enabled": False})

    def _keep(self, route):
        if route.request.method != "POST":
            return route.continue_()
        answer = route.fetch()
        if answer.headers.get("content-type") == "application/pdf":
            self.pdfs.append(answer.body())
        route.fulfill(response=answer)

    def wait_for_pdf_tab(self, page, count: int = 1):
        """Wait until `count` sheets came, each in a tab showing it as a PDF; return the last."""
        for _ in range(100):
            if len(self.tabs) >= count and len(self.pdfs) >= count:
                break
            page.wait_for_timeout(100)
        tab = self.tabs[-1]
        tab.wait_for_load_state()
        assert tab.evaluate("() => document.contentType") == "application/pdf"
        return tab


@pytest.mark.browser
def test_a_teacher_in_a_real_browser_voids_prints_and_resets(app, world, redis_client, browser, live_server,
                                                             tmp_path):
    """Void a card, print a temporary badge, give a new password: through the pages' own buttons."""
    issue(redis_client, world.student)
    context, page = _teacher_in_a_browser(browser, live_server, world)
    try:
        page.click("header >> text=My classes")
        page.click("ul.classes >> text=Room 4")
        row = page.locator(f"#student-{world.student.id}")
        assert "card until" in row.inner_text()
        row.locator("text=Void badge").click()
        page.wait_for_url(live_server + f"/teacher/sections/{world.section.id}")
        assert page.inner_text(".done") == "Ada Lovelace's badge no longer works."
        assert "no card" in row.inner_text()

        row.locator("select[name=hours]").select_option("2")
        sheets = Sheets(context)
        Sheets.real_focus(context, page)
        row.locator("text=Temporary badge").click()
        tab = sheets.wait_for_pdf_tab(page)
        pdf = tmp_path / "temporary.pdf"
        pdf.write_bytes(sheets.pdfs[0])
        [([token], text)] = read_sheet(pdf)
        assert text.startswith("Ada L.\nTemporary until ")
        tab.close()                     # back to the class page, which shows the new badge
        page.bring_to_front()
        page.wait_for_function("() => document.querySelector('#student-%d').innerText.includes("
                               "'temporary badge until')" % world.student.id)

        row.locator("summary", has_text="New password").click()
        row.locator("button", has_text="Set new password").click()
        password = page.inner_text("#new-password")
        assert re.fullmatch(r"[a-z]+-[a-z]+-[0-9]{2}", password)
        page.click("text=Back to the class")
        page.wait_for_url(live_server + f"/teacher/sections/{world.section.id}")
    finally:
        context.close()
    kiosk = enroll_kiosk(app, redis_client, world.school)
    assert kiosk.scan(token).status_code == 200
    login(new_client(app), world.student.username, password)


@pytest.mark.browser
def test_a_double_click_on_print_gives_one_sheet_whose_cards_work(app, world, redis_client, browser,
                                                                   live_server, tmp_path):
    # Found by review: each press reissued the class's badges, so a double-click downloaded two
    # sheets and the first one's cards were already dead.
    context, page = _teacher_in_a_browser(browser, live_server, world)
    sheets = Sheets(context)
    try:
        page.goto(live_server + f"/teacher/sections/{world.section.id}")
        button = page.get_by_role("button", name="Print badges for the 3 students without a card")
        button.click()
        page.wait_for_timeout(300)
        button.click(no_wait_after=True)  # the second press of a double-click
        sheets.wait_for_pdf_tab(page)
        page.wait_for_timeout(1500)       # time for a second sheet, were one coming
        assert len(sheets.pdfs) == 1 and len(sheets.tabs) == 1
        pdf = tmp_path / "sheet.pdf"
        pdf.write_bytes(sheets.pdfs[0])
        tokens = [token for found, _ in read_sheet(pdf) for token in found]
        # Rows name the student their buttons act on, for screen readers.
        page.reload()
        assert page.get_by_role("button", name=f"Void badge: {world.student.display_name}").count() == 1
    finally:
        context.close()
    assert len(tokens) == 3
    kiosk = enroll_kiosk(app, redis_client, world.school)
    assert [kiosk.scan(token).status_code for token in tokens] == [200] * len(tokens)


@pytest.mark.browser
def test_the_sheet_opens_in_the_browsers_pdf_viewer_and_nothing_is_downloaded(
        app, world, redis_client, browser, live_server, tmp_path, monkeypatch):
    # Found by review: the sheet of live badges was saved to a shared computer's Downloads folder.
    # It opens in a tab of its own, in Chromium's PDF viewer (to print), and is not downloaded;
    # back on the class page, the page shows what the sheet holds and whose names to write.
    import portal.badges.sheets as label_fonts
    monkeypatch.setattr(label_fonts, "_fallbacks", [])    # no font for Alan's name
    world.classmate.given_name = "李"
    db.session.commit()
    context, page = _teacher_in_a_browser(browser, live_server, world)
    sheets = Sheets(context)
    try:
        page.goto(live_server + f"/teacher/sections/{world.section.id}")
        Sheets.real_focus(context, page)
        advice = " ".join(page.inner_text(".class-actions").split())
        assert "Print it at Actual size (100%), not \"Fit to page\"" in advice
        assert "After printing, close the sheet; if your browser saved it, delete the file" in advice
        page.get_by_role("button", name="Print badges for the 3 students without a card").click()
        tab = sheets.wait_for_pdf_tab(page)
        assert tab.url == live_server + f"/badges/sections/{world.section.id}/sheet"
        assert page.url == live_server + f"/teacher/sections/{world.section.id}"  # the page stays
        tab.close()
        page.bring_to_front()
        page.wait_for_selector(".problem")
        assert page.inner_text(".done") == "Room 4: 3 new cards on the sheet (1 page)."
        assert "李 T. (page 1, label 3)" in page.inner_text(".problem")
        assert sheets.downloads == []
    finally:
        context.close()
    pdf = tmp_path / "sheet.pdf"
    pdf.write_bytes(sheets.pdfs[0])
    assert len(read_sheet(pdf)) == 3


@pytest.mark.browser
def test_replacement_and_temporary_badges_print_on_the_paper_chosen_on_the_class_page(
        app, world, redis_client, browser, live_server, tmp_path):
    # Found by review: a replacement card or a temporary badge always came on US Letter, whatever
    # paper an A4 school chose for its class sheets.
    from tests.badges.test_sheets import _page_size
    from reportlab.lib.pagesizes import A4
    issue(redis_client, world.student)
    context, page = _teacher_in_a_browser(browser, live_server, world)
    sheets = Sheets(context)
    try:
        page.goto(live_server + f"/teacher/sections/{world.section.id}")
        page.select_option("#paper", "a4")
        row = page.locator(f"#student-{world.student.id}")
        row.locator("text=Temporary badge").click()
        sheets.wait_for_pdf_tab(page, 1)
        page.reload()                                   # the choice is remembered
        assert page.eval_on_selector("#paper", "select => select.value") == "a4"
        page.locator(f"#student-{world.student.id}").locator("text=Replace card").click()
        sheets.wait_for_pdf_tab(page, 2)
        page.get_by_role("button", name="Print badges for the 2 students without a card").click()
        sheets.wait_for_pdf_tab(page, 3)
    finally:
        context.close()
    for n, pdf in enumerate(sheets.pdfs):
        path = tmp_path / f"{n}.pdf"
        path.write_bytes(pdf)
        assert _page_size(path) == pytest.approx(A4, abs=0.5), n


def test_without_javascript_a_badge_form_prints_on_letter(app, world, redis_client):
    issue(redis_client, world.student)
    teacher = _signed_in(app, world.teacher)
    html_page = teacher.get(f"/teacher/sections/{world.section.id}").get_data(as_text=True)
    row = re.search(rf'<tr id="student-{world.student.id}">(.*?)</tr>', html_page, re.S).group(1)
    assert row.count('<input type="hidden" name="paper" value="letter" data-paper>') == 2
    assert '<select id="paper" name="paper" form="print-missing">' in html_page


def _new_password(response) -> str:
    match = re.search(r'id="new-password">([^<]+)<', response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[:500]
    return html.unescape(match.group(1))


def test_a_teacher_gives_a_student_a_new_password_that_signs_in_once_shown(app, world, redis_client):
    from portal.models import Event
    student_browser = _signed_in(app, world.student)
    assert student_browser.get("/").status_code == 200
    page = f"/teacher/sections/{world.section.id}"
    teacher = _signed_in(app, world.teacher)
    answer = _form_post(teacher, f"/teacher/students/{world.student.id}/password", back=page)
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    new = _new_password(answer)
    assert re.fullmatch(r"[a-z]+-[a-z]+-[0-9]{2}", new)
    assert f'href="{page}"' in answer.get_data(as_text=True)
    assert student_browser.get("/").status_code == 302  # signed out everywhere
    fresh = new_client(app)
    login(fresh, world.student.username, new)
    bad = new_client(app)
    csrf = csrf_from(bad, "/login")
    assert bad.post("/login", data={"username": world.student.username, "password": "correct horse battery",
                                    "csrf_token": csrf}).status_code == 401  # the old one no longer works
    db.session.expire_all()
    [event] = db.session.scalars(select(Event).where(Event.kind == "password_set"))
    assert (event.person_id, event.actor_id) == (world.student.id, world.teacher.id)
    assert new not in str(event.data)
    assert _new_password(_form_post(teacher, f"/teacher/students/{world.student.id}/password")) != new


def test_a_new_password_lifts_the_lock_on_a_username_held_in_full_width_letters(app, world):
    # Sign-ins are counted under the name in ordinary letters (the same account, whatever mix of
    # wide and narrow letters is typed): the teacher's new password must clear that count.
    world.student.username = "ａｄａ"
    db.session.commit()
    locked = new_client(app)
    for _ in range(30):
        csrf = csrf_from(locked, "/login")
        answer = locked.post("/login", data={"username": "ａｄａ", "password": "not the password",
                                             "csrf_token": csrf})
        if answer.status_code == 429:
            break
    assert answer.status_code == 429
    teacher = _signed_in(app, world.teacher)
    new = _new_password(_form_post(teacher, f"/teacher/students/{world.student.id}/password"))
    login(new_client(app), "ａｄａ", new)


def test_a_typed_password_is_used_and_a_short_one_refused(app, world):
    teacher = _signed_in(app, world.teacher)
    path = f"/teacher/students/{world.classmate.id}/password"
    page = f"/teacher/sections/{world.section.id}"
    refused = _form_post(teacher, path, password="short", back=page)
    assert refused.status_code == 400
    assert "at least 8 characters" in _text(refused) and "Traceback" not in _text(refused)
    # Its link goes back to the class page the teacher was on, not to "my apps" (found by review).
    assert f'href="{page}"' in refused.get_data(as_text=True) and "Back to the class" in _text(refused)
    login(new_client(app), world.classmate.username)  # unchanged
    assert _new_password(_form_post(teacher, path, password="  purple-whale-77  ")) == "purple-whale-77"
    login(new_client(app), world.classmate.username, "purple-whale-77")


@pytest.mark.parametrize("typed, says", [
    # Found by review: "at most 1024 characters. Type a longer one": the advice fits the limit.
    ("x" * 1025, "A password can have at most 1024 characters. Type a shorter one, or leave it empty "
                 "for one made for you."),
    # Found by review: accepted and shown, yet no student can type them at the sign-in page.
    ("\u200b" * 8, "A password can only have characters a keyboard types: no line breaks, tabs or "
                   "invisible characters. Type it again without them, or leave it empty for one made for you."),
    ("pass\nword1", "no line breaks, tabs or invisible characters"),
    ("pass\tword1", "no line breaks, tabs or invisible characters"),
    ("pass\u00a0word1", "no line breaks, tabs or invisible characters"),    # a no-break space
    ("\u202epassword1", "no line breaks, tabs or invisible characters"),     # a direction mark
])
def test_a_typed_password_no_student_could_type_is_refused_in_plain_words(app, world, typed, says):
    teacher = _signed_in(app, world.teacher)
    page = f"/teacher/sections/{world.section.id}"
    refused = _form_post(teacher, f"/teacher/students/{world.classmate.id}/password", password=typed, back=page)
    assert refused.status_code == 400
    text = _text(refused)
    assert "That password can't be used" in text and says in text and "Traceback" not in text
    login(new_client(app), world.classmate.username)  # unchanged


def test_the_password_box_takes_what_a_password_may_hold(app, world):
    teacher = _signed_in(app, world.teacher)
    page = teacher.get(f"/teacher/sections/{world.section.id}").get_data(as_text=True)
    boxes = re.findall(r'<input type="text" id="password-\d+" name="password"[^>]*>', page)
    assert boxes and all('maxlength="1024"' in box for box in boxes)
    # Letters of every script pass, the joiners a Persian keyboard types inside words among them.
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645-\u06f1\u06f2\u06f3"
    path = f"/teacher/students/{world.classmate.id}/password"
    assert _new_password(_form_post(teacher, path, password=persian)) == persian
    login(new_client(app), world.classmate.username, persian)


def test_a_locked_out_student_can_sign_in_with_the_new_password(app, world):
    from tests.badges.conftest import csrf_from as token_of
    for _ in range(12):
        client = new_client(app)
        client.post("/login", data={"username": world.student.username, "password": "wrong guess",
                                    "csrf_token": token_of(client, "/login")})
    teacher = _signed_in(app, world.teacher)
    new = _new_password(_form_post(teacher, f"/teacher/students/{world.student.id}/password"))
    login(new_client(app), world.student.username, new)


def test_only_a_students_own_teachers_and_admins_set_their_password(app, world):
    other = _signed_in(app, world.other_teacher)
    for target in (world.student, world.teacher, world.school_admin):
        answer = _form_post(other, f"/teacher/students/{target.id}/password", password="purple-whale-77")
        assert answer.status_code == 403, target.username
        assert "can't change that student's password" in _text(answer)
    assert _form_post(other, "/teacher/students/999999/password").status_code == 403
    teacher = _signed_in(app, world.teacher)
    assert _form_post(teacher, f"/teacher/students/{world.teacher.id}/password").status_code == 403
    assert _form_post(teacher, f"/teacher/students/{world.far_student.id}/password").status_code == 403
    student = _signed_in(app, world.classmate)
    assert _form_post(student, f"/teacher/students/{world.student.id}/password",
                      password="purple-whale-77").status_code == 403
    assert teacher.post(f"/teacher/students/{world.student.id}/password",
                        data={"password": "purple-whale-77"}).status_code == 400  # no CSRF token
    for person in (world.student, world.teacher, world.school_admin, world.far_student):
        login(new_client(app), person.username)  # every password as it was
    principal = _signed_in(app, world.school_admin)
    assert _form_post(principal, f"/teacher/students/{world.other_student.id}/password").status_code == 200


def test_a_school_admin_sees_the_schools_devices_and_stops_one(app, world, redis_client, kiosk):
    token = issue(redis_client, world.student)
    name = kiosk_name(kiosk)
    teacher = _signed_in(app, world.teacher)
    assert f'id="device-{kiosk.device_id}"' not in teacher.get("/teacher/").get_data(as_text=True)
    assert _form_post(teacher, f"/kiosk/devices/{kiosk.device_id}/revoke").status_code == 403
    assert kiosk.scan(token).status_code == 200

    principal = _signed_in(app, world.school_admin)
    page = f"/teacher/?school={world.school.id}"
    html_page = principal.get(page).get_data(as_text=True)
    row = _text_of(re.search(rf'<tr id="device-{kiosk.device_id}">(.*?)</tr>', html_page, re.S).group(1))
    assert name in row and "working" in row and "Stop this device" in row
    answer = _form_post(principal, f"/kiosk/devices/{kiosk.device_id}/revoke", back=page)
    assert answer.status_code == 303 and answer.headers["Location"] == page
    html_page = principal.get(page).get_data(as_text=True)
    assert f"{name} can no longer sign anyone in." in html.unescape(html_page)
    row = _text_of(re.search(rf'<tr id="device-{kiosk.device_id}">(.*?)</tr>', html_page, re.S).group(1))
    assert "stopped" in row and "Stop this device" not in row
    assert kiosk.scan(token).status_code == 401

    district = _signed_in(app, world.district_admin)
    assert "has no classroom device yet" in _text(district.get(f"/teacher/?school={world.other_school.id}"))


def test_the_bell_signs_every_student_of_the_class_out_everywhere(app, world, redis_client, kiosk):
    from portal.models import Event
    ada_laptop = _signed_in(app, world.student)
    alan_laptop = _signed_in(app, world.classmate)
    assert kiosk.sign_in(issue(redis_client, world.student)).status_code == 302  # Ada on the kiosk too
    grace = _signed_in(app, world.other_student)                                  # Room 5
    page = f"/teacher/sections/{world.section.id}"
    teacher = _signed_in(app, world.teacher)
    assert _form_post(teacher, f"/teacher/sections/{world.other_section.id}/sign-out",
                      back=page).status_code == 403
    assert _form_post(teacher, "/teacher/sections/999999/sign-out", back=page).status_code == 403
    assert teacher.post(f"/teacher/sections/{world.section.id}/sign-out",
                        data={"next": page}).status_code == 400  # no CSRF token
    assert ada_laptop.get("/").status_code == 200  # nothing ended yet

    answer = _form_post(teacher, f"/teacher/sections/{world.section.id}/sign-out", back=page)
    assert answer.status_code == 303 and answer.headers["Location"] == page
    assert "Room 4: everyone is signed out (3 sign-ins ended)." in _text(teacher.get(page))
    assert ada_laptop.get("/").status_code == 302 and alan_laptop.get("/").status_code == 302
    assert kiosk.browser.get("/badges/home").status_code == 302
    assert grace.get("/").status_code == 200 and teacher.get("/").status_code == 200
    db.session.expire_all()
    [event] = db.session.scalars(select(Event).where(Event.kind == "class_signed_out"))
    assert event.actor_id == world.teacher.id
    assert event.data == {"section_id": world.section.id, "students": 3, "sessions": 3}

    csrf = csrf_from(teacher, page)
    again = teacher.post(f"/teacher/sections/{world.section.id}/sign-out", json={},
                         headers={"X-CSRFToken": csrf})
    assert again.status_code == 200 and again.json == {"students": 3, "sessions": 0}


def test_a_school_admin_sets_the_badge_policy_on_the_page(app, world, redis_client, kiosk):
    from portal.badges.policy import policy_for
    from portal.models import Event
    page = f"/teacher/?school={world.school.id}"
    principal = _signed_in(app, world.school_admin)
    text = _text(principal.get(page))
    assert "Badges at Maple Elementary" in text and "Save the badge policy" in text
    answer = _form_post(principal, f"/teacher/schools/{world.school.id}/badge-policy", back=page,
                        grades=["KG", "01"], second_factor_grades=["01"], factor="picture",
                        browser_scanner="yes", expires="06-30")
    assert answer.status_code == 303 and answer.headers["Location"] == page
    assert "Maple Elementary: badges for KG, 01; second factor (picture) for 01" in _text(principal.get(page))
    db.session.expire_all()
    policy = policy_for(db.session, world.school.id)
    assert (policy.grades, policy.second_factor_grades, policy.factor.value, policy.allow_browser_scanner,
            policy.expires_on) == ({"KG", "01"}, {"01"}, "picture", True, "06-30")
    [event] = db.session.scalars(select(Event).where(Event.kind == "badge_policy_set"))
    assert event.actor_id == world.school_admin.id and event.data["school_id"] == world.school.id
    # Grade 04 no longer uses badges: Katherine's badge stops at the kiosk.
    token = issue(redis_client, world.older_student)
    assert kiosk.scan(token).status_code == 403


@pytest.mark.parametrize("fields, says", [
    ({"grades": ["01"], "second_factor_grades": ["02"], "factor": "pin"}, "must also be badge grades"),
    ({"grades": ["01"], "factor": "fingerprint"}, "pin or picture"),
    ({"grades": ["13th"], "factor": "pin"}, "is not a OneRoster grade"),
    ({"grades": ["01"], "factor": "pin", "expires": "02-30"}, ""),
    ({"grades": ["01"], "factor": "pin", "expires": "soon"}, ""),
])
def test_a_bad_badge_policy_says_why_and_changes_nothing(app, world, fields, says):
    from portal.badges.policy import policy_for
    before = policy_for(db.session, world.school.id)
    principal = _signed_in(app, world.school_admin)
    answer = _form_post(principal, f"/teacher/schools/{world.school.id}/badge-policy",
                        back=f"/teacher/?school={world.school.id}", **fields)
    assert answer.status_code == 400
    text = _text(answer)
    assert "That badge policy can't be used" in text and says in text and "Nothing changed." in text
    assert "Traceback" not in text
    db.session.expire_all()
    assert policy_for(db.session, world.school.id) == before


def test_a_badge_policy_form_from_a_page_older_than_the_policy_changes_nothing(app, world):
    # Found by review: the form sends every setting, so a principal's tab opened before the
    # district admin limited the browser scanner to the school's network set the limit back to
    # none (a photo of a badge worked from anywhere again) when a grade was added there, and the
    # confirmation said nothing of networks.
    from portal.badges.policy import policy_for
    from portal.models import Event
    page = f"/teacher/?school={world.school.id}"
    path = f"/teacher/schools/{world.school.id}/badge-policy"
    principal, district = _signed_in(app, world.school_admin), _signed_in(app, world.district_admin)
    settings = {"grades": ["KG", "01", "02"], "factor": "pin", "browser_scanner": "yes"}
    assert _form_post(principal, path, back=page, **settings).status_code == 303
    shown = principal.get(page)                                         # the principal's tab
    assert "browser scanner allowed from any network;" in _text(shown)   # the confirmation says so
    seen_by_principal = _policy_shown(principal, page)
    assert seen_by_principal
    limited = _form_post(district, path, back=page, scanner_networks="10.20.0.0/16", **settings)
    assert limited.status_code == 303
    changes = len(list(db.session.scalars(select(Event).where(Event.kind == "badge_policy_set"))))
    stale = _form_post(principal, path, back=page, expect=seen_by_principal, scanner_networks="",
                       **{**settings, "grades": ["KG", "01", "02", "03"]})
    assert stale.status_code == 409
    text = _text(stale)
    assert "Someone changed this school's badge policy since you opened this page" in text
    assert ("Nothing changed. It is now: badges for KG, 01, 02; second factor (pin) for none; browser "
            "scanner allowed; scanner networks 10.20.0.0/16;") in text
    assert f'href="{page}"' in stale.get_data(as_text=True) and "Back to the badge policy" in text
    db.session.expire_all()
    now = policy_for(db.session, world.school.id)
    assert now.scanner_networks == ("10.20.0.0/16",) and "03" not in now.grades
    assert len(list(db.session.scalars(select(Event).where(Event.kind == "badge_policy_set")))) == changes
    # Back on the page, as it is now: its form shows the network and changes what is asked.
    assert 'value="10.20.0.0/16"' in principal.get(page).get_data(as_text=True)
    again = _form_post(principal, path, back=page, scanner_networks="10.20.0.0/16",
                       **{**settings, "grades": ["KG", "01", "02", "03"]})
    assert again.status_code == 303
    db.session.expire_all()
    assert policy_for(db.session, world.school.id).grades == {"KG", "01", "02", "03"}
    assert policy_for(db.session, world.school.id).scanner_networks == ("10.20.0.0/16",)


@pytest.mark.parametrize("expect", [None, "", "0" * 16, "x" * 5000])
def test_a_badge_policy_form_without_the_policy_its_page_showed_changes_nothing(app, world, expect):
    # Without it: a page from before this check, as out of date as any.
    from portal.badges.policy import policy_for
    before = policy_for(db.session, world.school.id)
    page = f"/teacher/?school={world.school.id}"
    principal = _signed_in(app, world.school_admin)
    data = {"csrf_token": csrf_from(principal, page), "next": page, "grades": ["KG"], "factor": "pin"}
    if expect is not None:
        data["expect"] = expect
    answer = principal.post(f"/teacher/schools/{world.school.id}/badge-policy", data=data)
    assert answer.status_code == 409 and "Nothing changed." in _text(answer)
    db.session.expire_all()
    assert policy_for(db.session, world.school.id) == before


def test_only_the_schools_admins_set_its_badge_policy(app, world):
    from portal.badges.policy import policy_for
    before = policy_for(db.session, world.school.id)
    for person in (world.teacher, world.student):
        client = _signed_in(app, person)
        assert _form_post(client, f"/teacher/schools/{world.school.id}/badge-policy",
                          grades=["KG"], factor="pin").status_code == 403
    principal = _signed_in(app, world.school_admin)
    assert _form_post(principal, f"/teacher/schools/{world.other_school.id}/badge-policy",
                      grades=["KG"], factor="pin").status_code == 403
    assert _form_post(principal, "/teacher/schools/999999/badge-policy", grades=["KG"],
                      factor="pin").status_code == 403
    assert principal.post(f"/teacher/schools/{world.school.id}/badge-policy",
                          data={"grades": "KG", "factor": "pin"}).status_code == 400  # no CSRF token
    assert "Badges at" not in _text(_signed_in(app, world.teacher).get("/teacher/"))
    db.session.expire_all()
    assert policy_for(db.session, world.school.id) == before


HTTPS = "https://portal.example"
# Under each policy that sends one, what a browser sends as the Referer of a request to the page's
# own site: the page's whole address, or its origin only (w3c.github.io/webappsec-referrer-policy).
REFERER_TO_OWN_SITE = {"same-origin": "address", "unsafe-url": "address",
                       "no-referrer-when-downgrade": "address", "origin-when-cross-origin": "address",
                       "strict-origin-when-cross-origin": "address", "origin": "origin",
                       "strict-origin": "origin"}


def _referer_from(page, address: str) -> str | None:
    """The Referer a browser sends with a form this page posts to the portal (None: none)."""
    # A browser obeys the last policy of the header it knows; with none, its default.
    policy = page.headers.get("Referrer-Policy", "strict-origin-when-cross-origin").split(",")[-1].strip()
    sends = REFERER_TO_OWN_SITE.get(policy)
    return address if sends == "address" else f"{HTTPS}/" if sends == "origin" else None


def _https_token(client, path: str, page=None) -> str:
    html = (page or client.get(path, base_url=HTTPS)).get_data(as_text=True)
    match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def test_a_teacher_signs_out_from_the_new_password_page_in_production(production, world):
    """Over HTTPS a form needs a Referer from the portal. The new-password page asked for none
    (no-referrer), so its Sign out button was refused and the teacher stayed signed in."""
    teacher = new_client(production)
    signed_in = teacher.post("/login", base_url=HTTPS, headers={"Referer": f"{HTTPS}/login"}, data={
        "username": world.teacher.username, "password": "correct horse battery",
        "csrf_token": _https_token(teacher, "/login")})
    assert signed_in.status_code == 302, _text(signed_in)[:300]
    section = f"/teacher/sections/{world.section.id}"
    address = f"{HTTPS}/teacher/students/{world.student.id}/password"
    page = teacher.post(address, headers={"Referer": HTTPS + section}, data={
        "csrf_token": _https_token(teacher, section), "next": section})
    assert page.status_code == 200 and _new_password(page)
    referer = _referer_from(page, address)
    assert referer is not None, page.headers.get("Referrer-Policy")
    signed_out = teacher.post("/logout", base_url=HTTPS, headers={"Referer": referer},
                              data={"csrf_token": _https_token(teacher, "", page)})
    assert signed_out.status_code == 302, _text(signed_out)[:300]
    assert teacher.get("/teacher/", base_url=HTTPS).status_code == 302   # to the sign-in page


def test_a_student_who_moved_school_is_not_their_old_class_teachers_any_more(app, world, redis_client):
    # The roster moved Ada to Oak but still lists her in Maple's Room 4 (an enrollment left
    # behind): Room 4's teacher no longer sees her or acts on her; Oak's admins do.
    from portal.badges.permissions import managed_students, may_manage_student
    from portal.models import Person, PersonSchool
    issue(redis_client, world.student)
    db.session.delete(db.session.get(PersonSchool, (world.student.id, world.school.id)))
    db.session.add(PersonSchool(person_id=world.student.id, school_id=world.other_school.id))
    db.session.commit()
    teacher, ada = (db.session.get(Person, p.id) for p in (world.teacher, world.student))
    assert not may_manage_student(db.session, teacher, ada)
    assert ada.id not in set(db.session.scalars(managed_students(teacher)))
    assert may_manage_student(db.session, teacher, db.session.get(Person, world.classmate.id))
    client = _signed_in(app, world.teacher)
    rows = re.findall(r'<tr id="student-(\d+)">', client.get(f"/teacher/sections/{world.section.id}").get_data(as_text=True))
    assert str(world.student.id) not in rows and str(world.classmate.id) in rows
    for path in (f"/teacher/students/{world.student.id}/password", f"/badges/students/{world.student.id}/void"):
        assert _form_post(client, path, back=f"/teacher/sections/{world.section.id}").status_code == 403, path
    assert [b.id for b in _working(world.student)]  # her card was not voided by the old teacher


def test_a_teacher_the_roster_moved_to_another_school_has_no_say_in_her_old_class(app, world, redis_client):
    # Found by review: the roster moved Tess from Maple to Oak but left her teaching Maple's Room 4
    # (an enrollment left behind, as for a student who moved): she kept the class page, new
    # passwords and badge sheets for its students, and pairing codes for Maple.
    from portal.models import PersonSchool
    issue(redis_client, world.student)
    db.session.delete(db.session.get(PersonSchool, (world.teacher.id, world.school.id)))
    db.session.add(PersonSchool(person_id=world.teacher.id, school_id=world.other_school.id))
    db.session.commit()
    client = _signed_in(app, world.teacher)
    assert f"/teacher/sections/{world.section.id}" not in client.get("/teacher/").get_data(as_text=True)
    assert client.get(f"/teacher/sections/{world.section.id}").status_code in (403, 404)
    back = "/teacher/"
    for path in (f"/teacher/students/{world.student.id}/password", f"/badges/students/{world.student.id}/void",
                 f"/badges/students/{world.student.id}/issue", f"/badges/sections/{world.section.id}/sheet",
                 f"/badges/sections/{world.section.id}/void"):
        assert _form_post(client, path, back=back, confirm="yes").status_code in (403, 404), path
    assert _form_post(client, "/kiosk/pair", back=back, school=world.school.id).status_code == 403
    assert _working(world.student)   # her card was not voided
    # Where the roster puts her now, she pairs as before.
    assert _form_post(client, "/kiosk/pair", back=back, school=world.other_school.id).status_code == 200


def test_voiding_a_class_voids_its_schools_cards_of_its_students_now(app, world, redis_client):
    # Ada moved to Oak (left enrolled in Room 4) and has an Oak card; Alan is in Room 4.
    from portal.badges.services import void_badges_for_section
    from portal.models import Person, PersonSchool
    db.session.delete(db.session.get(PersonSchool, (world.student.id, world.school.id)))
    db.session.add(PersonSchool(person_id=world.student.id, school_id=world.other_school.id))
    db.session.commit()
    issue(redis_client, world.student)
    issue(redis_client, world.classmate)
    teacher = db.session.get(Person, world.teacher.id)
    section = db.session.merge(world.section)
    assert void_badges_for_section(db.session, redis_client, section, actor=teacher) == 1
    assert _working(world.student) and not _working(world.classmate)
