"""Deletion requests (portal.admin.deletions): a district admin asks an app's vendor to delete what
the app received about a student, from the person's page or `portal deletions ask`; the letter
names the student only by what the app was sent; the vendor's confirmation is recorded; each
step is in the audit log. Read back from real launches."""
from __future__ import annotations

import html
import re

import pytest

from portal.models import DeletionRequest, Event
from tests.admin.helpers import cli, refused
from tests.admin.test_shared_pages import _client, _text, shared  # noqa: F401  (the fixture)


def _ask(admin, person, app_slug):
    page = admin.get(f"/admin/people?username={person.username}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    return admin.post(f"/admin/people/{person.id}/deletions", data={"app": app_slug, "csrf_token": token})


def _csrf(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def _requests(app):
    from portal.db import db
    with app.app_context():
        return [(r.id, r.app_name, r.person_id, r.fields, r.done_at is not None)
                for r in db.session.query(DeletionRequest).order_by(DeletionRequest.id)]


def _events(app, kind):
    from portal.db import db
    with app.app_context():
        return [(e.person_id, e.actor_id, e.app_id, e.data) for e in db.session.query(Event).filter_by(kind=kind)]


def test_an_admin_asks_an_app_to_delete_and_gets_the_letter(app, shared):
    from portal.access import pairwise_subject
    admin = _client(app, "dee.admin")
    ada, saml = shared["ada"], shared["saml"]
    person_page = _text(admin.get("/admin/people?username=ada.lovelace"))
    assert "Ask Reading Garden to delete" in person_page
    assert "nothing to delete: a link" in person_page          # the Library link received nothing
    asked = _ask(admin, ada, saml.slug)
    assert asked.status_code == 303 and re.search(r"/admin/deletions/\d+$", asked.headers["Location"])
    letter = admin.get(asked.headers["Location"])
    assert letter.status_code == 200 and letter.headers["Cache-Control"] == "no-store"
    text = _text(letter)
    assert "Request made" in text and "Waiting for Reading Garden's vendor" in text
    subject = pairwise_subject(app.config["SETTINGS"].pairwise_key, ada, saml)
    assert subject in text
    assert "received subject, given_name, grade, school about this student" in text
    # The letter names the student only by what the app was sent: never the family name or the
    # username, which this app did not receive.
    letter_part = letter.get_data(as_text=True).split('class="vendor-letter"')[1].split("</section>")[0]
    assert "Lovelace" not in letter_part and "ada.lovelace" not in letter_part
    [(request_id, name, person_id, fields, done)] = _requests(app)
    assert (name, person_id, fields, done) == ("Reading Garden", ada.id, ["subject", "given_name", "grade", "school"], False)
    [(about, by, app_id, data)] = _events(app, "deletion_requested")
    assert (about, by, app_id) == (ada.id, shared["admin"].id, saml.id)
    assert data == {"request": request_id, "fields": ["subject", "given_name", "grade", "school"]}
    person_page = _text(admin.get("/admin/people?username=ada.lovelace"))
    assert "waiting for the vendor" in person_page and "Ask Reading Garden to delete" not in person_page
    assert "Reading Garden" in _text(admin.get("/admin/deletions"))
    assert f"Request {request_id} about Ada Lovelace, asked" in _text(admin.get(f"/admin/apps/{saml.slug}"))


def test_asking_again_while_open_makes_no_second_request(app, shared):
    admin = _client(app, "dee.admin")
    first = _ask(admin, shared["ada"], shared["saml"].slug)
    again = _ask(admin, shared["ada"], shared["saml"].slug)
    assert again.headers["Location"] == first.headers["Location"]
    assert "was already asked on" in _text(admin.get(again.headers["Location"]))
    assert len(_requests(app)) == 1 and len(_events(app, "deletion_requested")) == 1


def test_the_vendors_confirmation_is_recorded_once(app, shared):
    admin = _client(app, "dee.admin")
    where = _ask(admin, shared["ada"], shared["saml"].slug).headers["Location"]
    page = admin.get(where)
    done = admin.post(f"{where}/done", data={"note": "  Ticket\n 4411, by J. Doe ", "csrf_token": _csrf(page)})
    assert done.status_code == 303
    text = _text(admin.get(where))
    assert "Deleted: the vendor confirmed" in text and "Ticket 4411, by J. Doe" in text
    assert "The vendor confirmed the deletion" not in text       # the form is gone
    [(_, _, _, _, is_done)] = _requests(app)
    assert is_done
    [(about, by, _, data)] = _events(app, "deletion_confirmed")
    assert (about, by) == (shared["ada"].id, shared["admin"].id) and "Ticket" not in str(data)
    again = admin.post(f"{where}/done", data={"note": "", "csrf_token": _csrf(page)})
    assert "already marked done" in _text(admin.get(again.headers["Location"]))
    assert len(_events(app, "deletion_confirmed")) == 1
    # Once done, the person's page offers to ask again (the app may have received more since).
    assert "Ask Reading Garden to delete again" in _text(admin.get("/admin/people?username=ada.lovelace"))
    assert "an app confirmed it deleted what it received" in _text(admin.get("/admin/log"))


@pytest.mark.parametrize("note", ["x" * 501, "bell\x07", "zero\u200bwidth"])
def test_a_bad_note_changes_nothing(app, shared, note):
    admin = _client(app, "dee.admin")
    where = _ask(admin, shared["ada"], shared["saml"].slug).headers["Location"]
    answer = admin.post(f"{where}/done", data={"note": note, "csrf_token": _csrf(admin.get(where))})
    text = _text(admin.get(answer.headers["Location"]))
    assert "Traceback" not in text and ("longer than 500" in text or "invisible" in text)
    [(_, _, _, _, is_done)] = _requests(app)
    assert not is_done and _events(app, "deletion_confirmed") == []


@pytest.mark.parametrize("app_slug, words", [
    ("library", "Library is a link"),
    ("no-such-app", "That app is not registered"),
    ("", "That app is not registered"),
    ("x" * 5000, "That app is not registered"),
])
def test_nothing_to_ask_is_refused_in_words(app, shared, app_slug, words):
    admin = _client(app, "dee.admin")
    answer = _ask(admin, shared["ada"], app_slug)
    assert answer.status_code == 303 and "/admin/people" in answer.headers["Location"]
    assert words in _text(admin.get(answer.headers["Location"]))
    assert _requests(app) == []


def test_an_app_that_received_nothing_about_the_person_is_refused(app, shared):
    admin = _client(app, "dee.admin")
    answer = _ask(admin, shared["grace"], shared["saml"].slug)
    assert "Reading Garden has received nothing about Grace Hopper" in _text(admin.get(answer.headers["Location"]))
    assert _requests(app) == []


def test_only_this_districts_admins_see_or_make_requests(app, shared):
    admin = _client(app, "dee.admin")
    where = _ask(admin, shared["ada"], shared["saml"].slug).headers["Location"]
    far = _client(app, "far.admin")
    assert far.get(where).status_code == 404
    assert "Reading Garden" not in _text(far.get("/admin/deletions"))
    assert "Deletion requests" not in _text(far.get(f"/admin/apps/{shared['saml'].slug}"))
    token = _csrf(far.get("/admin/deletions"))
    assert far.post(f"/admin/people/{shared['ada'].id}/deletions",
                    data={"app": shared["saml"].slug, "csrf_token": token}).status_code == 404
    assert far.post(f"{where}/done", data={"csrf_token": token}).status_code == 404
    for username in ("ada.lovelace", "tess.teacher"):
        client = _client(app, username)
        assert client.get(where).status_code == 403 and client.get("/admin/deletions").status_code == 403
    assert admin.get("/admin/deletions/999999").status_code == 404
    assert admin.get("/admin/deletions/99999999999999999999999").status_code == 404
    assert [done for *_, done in _requests(app)] == [False]


def test_a_request_outlives_the_student_and_keeps_no_name(app, shared):
    from portal.db import db
    from portal.models import Person
    admin = _client(app, "dee.admin")
    where = _ask(admin, shared["ada"], shared["saml"].slug).headers["Location"]
    with app.app_context():
        db.session.delete(db.session.get(Person, shared["ada"].id))   # as a roster import does
        db.session.commit()
    text = _text(admin.get(where))
    assert "a student no longer on the roster" in text and "Lovelace" not in text and "Ada" not in text
    [(_, name, person_id, _, _)] = _requests(app)
    assert (name, person_id) == ("Reading Garden", None)


def test_the_letter_names_released_identifiers_only(app, shared, runner):
    from portal.admin.services import release_fields
    from portal.db import db
    from portal.models import Person
    with app.app_context():
        release_fields(db.session, shared["saml"].slug, ["given_name", "username"])
        # She has an email and a student number, which this app was never sent.
        ada = db.session.get(Person, shared["ada"].id)
        ada.email, ada.student_number = "ada@example.org", "S-1815"
        db.session.commit()
    browser = _client(app, "ada.lovelace")
    assert browser.get(f"/launch/{shared['saml'].slug}").status_code == 200
    out = cli(runner, "deletions", "ask", "ada.lovelace", "Reading Garden")
    assert "portal username: ada.lovelace" in out and "email" not in out
    assert "ada@example.org" not in out and "S-1815" not in out
    assert "received: subject, given_name, username, grade, school" in out


def test_the_command_line_asks_lists_and_records(app, shared, runner):
    out = cli(runner, "deletions", "ask", "ada.lovelace", "Reading Garden")
    request_id = int(re.search(r"request (\d+)", out).group(1))
    assert "waiting for the vendor" in out and "subject" in out
    assert "already asked" in cli(runner, "deletions", "ask", "ada.lovelace", "reading-garden")
    assert f"request {request_id}" in cli(runner, "deletions", "list", "--open")
    assert "recorded" in cli(runner, "deletions", "done", request_id, "--note", "ticket 9")
    assert cli(runner, "deletions", "list", "--open").strip() == "no deletion requests waiting"
    assert "deleted, confirmed" in cli(runner, "deletions", "list")
    assert "already marked done" in refused(runner, "deletions", "done", request_id)
    [(_, _, _, data)] = _events(app, "deletion_confirmed")
    assert data == {"request": request_id}


@pytest.mark.parametrize("args, words", [
    (("ask", "nobody.here", "Reading Garden"), "no user called"),
    (("ask", "ada.lovelace", "No Such App"), "no app called"),
    (("ask", "ada.lovelace", "Library"), "is a link"),
    (("ask", "grace.hopper", "Reading Garden"), "has received nothing"),
    (("done", "424242"), "no deletion request 424242"),
    (("done", "0"), "no deletion request 0"),
    (("done", str(2**70)), "no deletion request"),
])
def test_the_command_line_refuses_in_one_line(app, shared, runner, args, words):
    assert words in refused(runner, "deletions", *args)
    assert _requests(app) == []


@pytest.mark.browser
def test_an_admin_in_a_real_browser_asks_opts_out_and_holds(app, shared, browser, live_server):
    from tests.admin.test_shared_pages import signed_in_page
    context, page = signed_in_page(browser, live_server, "dee.admin")
    try:
        page.goto(live_server + "/admin/people?username=ada.lovelace")
        page.click("text=Ask Reading Garden to delete")
        page.wait_for_url(re.compile(r".*/admin/deletions/\d+$"))
        assert "Request made" in page.inner_text(".done")
        assert "received subject, given_name, grade, school" in page.inner_text(".vendor-letter")
        page.fill("#note", "ticket 4411")
        page.click("text=The vendor confirmed the deletion")
        assert page.inner_text(".done") == "Recorded: Reading Garden has deleted what it received."
        page.click("text=Ada Lovelace")
        page.click("text=Opt out of Reading Garden")
        assert "opted out of Reading Garden" in page.inner_text(".done")
        page.fill("#reason", "password shared")
        page.click("text=Put Ada Lovelace's account on hold")
        assert "account is on hold" in page.inner_text(".done")
        assert "password shared" in page.inner_text("section.hold")
    finally:
        context.close()
    from portal.db import db
    from portal.models import AppOptOut, Person
    with app.app_context():
        assert db.session.get(Person, shared["ada"].id).held_at is not None
        assert db.session.get(AppOptOut, (shared["ada"].id, shared["saml"].id)) is not None
    assert [done for *_, done in _requests(app)] == [True]


def test_a_saml_apps_nameid_is_named_once(app, shared, runner):
    from tests.sso.conftest import register_and_grant
    from portal.db import db
    from portal.models import School
    with app.app_context():
        school = db.session.query(School).filter_by(sourced_id="sch-maple").one()
        register_and_grant(db.session, "Spelling Bee", school=school, nameid="username",
                           entity_id="https://spelling.example/sp", acs_urls=["https://spelling.example/acs"])
    assert _client(app, "ada.lovelace").get("/launch/spelling-bee").status_code == 200
    out = cli(runner, "deletions", "ask", "ada.lovelace", "Spelling Bee")
    assert "portal username, also the SAML NameID: ada.lovelace" in out
    assert out.count("ada.lovelace") == 1


def test_two_admins_confirming_at_once_record_one_confirmation(app, shared):
    # Both pages showed the request open; the second confirmation overwrote the first's note and
    # was recorded again.
    from datetime import datetime, timezone

    from portal.admin.deletions import confirm_deletion
    from portal.admin.services import AdminError
    from portal.db import db
    admin = _client(app, "dee.admin")
    request_id = int(_ask(admin, shared["ada"], shared["saml"].slug).headers["Location"].rsplit("/", 1)[1])
    now = datetime.now(timezone.utc)
    with app.app_context():                              # the first admin's request
        seen_open = db.session.get(DeletionRequest, request_id)
        assert seen_open.is_open
        with app.app_context():                          # the second's, at the same moment
            confirm_deletion(db.session, db.session.get(DeletionRequest, request_id), actor=None,
                             note="ticket B", now=now)
        with pytest.raises(AdminError, match="^this request was already marked done on "):
            confirm_deletion(db.session, seen_open, actor=None, note="ticket A", now=now)
    with app.app_context():
        assert db.session.get(DeletionRequest, request_id).done_note == "ticket B"
    assert len(_events(app, "deletion_confirmed")) == 1


def test_the_log_and_the_request_name_an_admin_the_roster_removed_since(app, shared, roster):
    # Found by review: the admin's actions were credited to "the command line or the roster" once
    # the roster removed them (the events' and requests' references to them are set to NULL).
    from sqlalchemy import delete

    from portal.db import db
    from portal.models import Person
    from tests.admin.test_shared_pages import _post
    roster.person("new.admin", role=shared["admin"].role, given="Nia", family="New")
    dee = _client(app, "dee.admin")
    ada, saml = shared["ada"], shared["saml"]
    assert _post(dee, f"/admin/people/{ada.id}/opt-out", app=saml.slug).status_code == 303
    letter = _ask(dee, ada, saml.slug).headers["Location"]
    assert dee.post(letter + "/done", data={"note": "", "csrf_token": _csrf(dee.get(letter))}).status_code == 303
    with app.app_context():                     # as the roster removes a person
        db.session.execute(delete(Person).where(Person.username == "dee.admin"))
        db.session.commit()

    new = _client(app, "new.admin")
    log = _text(new.get("/admin/log?username=ada.lovelace"))
    for said in ("opted out of an app: Reading Garden Ada Lovelace ada.lovelace Dee Admin (dee.admin), "
                 "since removed",
                 "an app was asked to delete what it received: Reading Garden Ada Lovelace ada.lovelace "
                 "Dee Admin (dee.admin), since removed",
                 "an app confirmed it deleted what it received: Reading Garden Ada Lovelace ada.lovelace "
                 "Dee Admin (dee.admin), since removed"):
        assert said in log
    assert "the command line or the roster" not in log
    page = _text(new.get(letter))
    assert "by Dee Admin (dee.admin), since removed." in page
    assert "(recorded by Dee Admin (dee.admin), since removed)" in page


def test_the_log_finds_what_a_removed_admin_did_by_their_username(app, shared, roster):
    # Found by review: the log's "about or by" filter said "No one called dee.admin" once the
    # roster removed them, though their events keep their name.
    from sqlalchemy import delete

    from portal.db import db
    from portal.models import Person
    from tests.admin.test_shared_pages import _post
    roster.person("new.admin", role=shared["admin"].role, given="Nia", family="New")
    dee = _client(app, "dee.admin")
    ada, saml = shared["ada"], shared["saml"]
    assert _post(dee, f"/admin/people/{ada.id}/opt-out", app=saml.slug).status_code == 303
    _ask(dee, ada, saml.slug)
    with app.app_context():                     # as the roster removes a person
        db.session.execute(delete(Person).where(Person.username == "dee.admin"))
        db.session.commit()

    new = _client(app, "new.admin")
    page = new.get("/admin/log?username=Dee.Admin")
    assert page.status_code == 200
    log = _text(page)
    assert "Dee.Admin is no longer on the roster" in log
    assert "opted out of an app: Reading Garden Ada Lovelace ada.lovelace Dee Admin (dee.admin), since removed" in log
    assert "an app was asked to delete what it received" in log
    shown = log.split("no longer on the roster")[1]
    assert "Nia New" not in shown and "signed in" not in shown
    page = new.get("/admin/log?username=dee.admin&kind=password_set")
    assert page.status_code == 200 and "Nothing recorded of that kind yet" in _text(page)
    assert "no longer on the roster" in _text(page)
    # Not a pattern: a name with the wildcards of SQL's LIKE finds no one.
    for pattern in ("dee_admin", "%admin", "dee.admi%", "%"):
        page = new.get("/admin/log", query_string={"username": pattern})
        assert page.status_code == 404 and "No one called" in _text(page), pattern
    # Another district's admin finds nothing of this district's.
    page = _client(app, "far.admin").get("/admin/log?username=dee.admin")
    assert page.status_code == 404 and "Reading Garden" not in _text(page)


def _letter_identifiers(admin, location) -> str:
    page = admin.get(location).get_data(as_text=True)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.split('class="identifiers"')[1]
                                                    .split("</dl>")[0])))


def _set(app, person, **values):
    from portal.db import db
    from portal.models import Person
    with app.app_context():
        someone = db.session.get(Person, person.id)
        for name, value in values.items():
            setattr(someone, name, value)
        db.session.commit()


def test_the_letter_gives_no_identifier_the_app_was_never_sent(app, shared, runner):
    # Found by review: the roster changed the student's email after the launch, and the letter
    # told the vendor the new one, which the app never received (a disclosure recorded nowhere).
    from portal.access import identifier_hash
    from portal.admin.services import release_fields
    from portal.db import db
    key = app.config["SETTINGS"].pairwise_key
    with app.app_context():
        release_fields(db.session, shared["saml"].slug, ["given_name", "email", "username"])
    _set(app, shared["ada"], email="ada@example.org")
    assert _client(app, "ada.lovelace").get(f"/launch/{shared['saml'].slug}").status_code == 200
    # The release record keeps a short keyed hash of each identifying value sent, never the value.
    launch = [data for *_, data in _events(app, "launch") if "email" in data.get("fields", [])][-1]
    assert launch["ids"] == {"email": identifier_hash(key, "email", "ada@example.org"),
                             "username": identifier_hash(key, "username", "ada.lovelace")}
    assert "ada@example.org" not in str(launch) and len(launch["ids"]["email"]) == 16
    _set(app, shared["ada"], email="augusta.king@example.org")
    admin = _client(app, "dee.admin")
    where = _ask(admin, shared["ada"], shared["saml"].slug).headers["Location"]
    shown = _letter_identifiers(admin, where)
    assert "augusta.king" not in shown and "ada@example.org" not in shown
    assert ("email address not shown: the email address you received has changed since, and you were "
            "never sent the new one; the subject above identifies the student") in shown
    assert "portal username ada.lovelace" in shown      # unchanged: the one the app received
    out = cli(runner, "deletions", "list")
    assert "augusta.king" not in out and "email address: not shown: the email address you received" in out
    # The audit log and the release records show no hash.
    for page in ("/admin/log?kind=launch", "/admin/people?username=ada.lovelace"):
        text = _text(admin.get(page))
        assert launch["ids"]["email"] not in text and "ids" not in text.split(), page
    # Once the app has received the new one, the letter gives it (and says there was another).
    assert _client(app, "ada.lovelace").get(f"/launch/{shared['saml'].slug}").status_code == 200
    shown = _letter_identifiers(admin, where)
    assert ("email address augusta.king@example.org (you may also hold an earlier email address of this "
            "student's, not shown here)") in shown


def test_the_letter_says_a_removed_identifier_is_not_shown(app, shared, runner):
    from portal.admin.services import release_fields
    from portal.db import db
    with app.app_context():
        release_fields(db.session, shared["saml"].slug, ["given_name", "student_number"])
    _set(app, shared["ada"], student_number="S-1815")
    assert _client(app, "ada.lovelace").get(f"/launch/{shared['saml'].slug}").status_code == 200
    _set(app, shared["ada"], student_number="")
    out = cli(runner, "deletions", "ask", "ada.lovelace", "Reading Garden")
    assert "S-1815" not in out
    assert ("the district's student number: not shown: the student number you received is no longer in "
            "the district's records; the subject above identifies the student") in out


def test_records_from_before_the_hashes_give_the_current_value_and_say_so(app, shared, runner):
    # A launch recorded by an older version of the portal: its fields, no hashes. Which email the
    # app received cannot be told, so the letter gives today's and says it is today's.
    from portal import audit
    from portal.db import db
    from portal.models import App, Person
    _set(app, shared["ada"], email="ada@example.org")
    with app.app_context():
        audit.record("launch", person=db.session.get(Person, shared["ada"].id),
                     app=db.session.get(App, shared["saml"].id),
                     data={"protocol": "saml", "fields": ["subject", "given_name", "email"]})
    out = cli(runner, "deletions", "ask", "ada.lovelace", "Reading Garden")
    assert ("email address: ada@example.org (the student's current one: the district's older records "
            "do not say which one you received)") in out


def test_dates_in_messages_and_the_command_line_are_the_districts(app, settings, shared, runner):
    # A request made at 20:00 in Chicago on Mar 3: its letter said Mar 3, the messages about it
    # and `portal deletions` Mar 4 (UTC's day).
    from dataclasses import replace
    from datetime import datetime, timezone

    from portal.db import db
    app.config["SETTINGS"] = replace(settings, timezone="America/Chicago")
    evening = datetime(2026, 3, 4, 2, 0, tzinfo=timezone.utc)
    admin = _client(app, "dee.admin")
    where = _ask(admin, shared["ada"], shared["saml"].slug).headers["Location"]
    with app.app_context():
        db.session.query(DeletionRequest).update({"asked_at": evening})
        db.session.commit()
    assert "was already asked on Mar 3, 2026" in _text(admin.get(_ask(admin, shared["ada"], shared["saml"].slug)
                                                                 .headers["Location"]))
    assert "already asked on 2026-03-03" in cli(runner, "deletions", "ask", "ada.lovelace", "Reading Garden")
    with app.app_context():
        db.session.query(DeletionRequest).update({"asked_at": evening, "done_at": evening,
                                                  "first_at": evening, "last_at": evening})
        db.session.commit()
    again = admin.post(f"{where}/done", data={"note": "", "csrf_token": _csrf(admin.get(where))})
    assert "already marked done on Mar 3, 2026" in _text(admin.get(again.headers["Location"]))
    listed = cli(runner, "deletions", "list")
    assert "asked 2026-03-03\tdeleted, confirmed 2026-03-03" in listed and "(2026-03-03 to 2026-03-03)" in listed
