"""Password sign-in through the real form: messages, redirects, sign-out."""
import html as htmllib

import pytest
from sqlalchemy import select

from portal.db import db
from portal.models import Event, Role
from tests.conftest import csrf_token


def problem(response) -> str:
    """The sign-in page's problem box, as the person reads it."""
    html = response.get_data(as_text=True)
    start = html.index('id="problem"')
    return htmllib.unescape(html[start:html.index("</div>", start)])


def test_student_signs_in_and_sees_tiles(client, auth, roster):
    school = roster.school()
    roster.person("ada.lovelace", schools=[school])
    response = auth.login()
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert "Hi, Ada!" in page.get_data(as_text=True)


@pytest.mark.parametrize("given, family, greeting", [("", "Suharto", "Hi, Suharto!"),
                                                     ("Madonna", "", "Hi, Madonna!")])
def test_a_student_with_one_name_is_greeted_by_it(client, auth, roster, given, family, greeting):
    roster.person("ada.lovelace", schools=[roster.school()], given=given, family=family)
    assert auth.login().status_code == 302
    assert greeting in client.get("/").get_data(as_text=True)


def test_username_is_not_case_sensitive(client, auth, roster):
    roster.person("ada.lovelace")
    assert auth.login(username="  Ada.Lovelace ").status_code == 302


def test_wrong_password_unknown_user_and_disabled_user_read_the_same(client, auth, roster):
    roster.person("ada.lovelace")
    roster.person("grace.hopper", enabled=False)
    roster.person("alan.turing", role=Role.teacher, enabled=False)
    wrong = auth.login(password="not it at all")
    unknown = auth.login(username="nobody.here")
    disabled = auth.login(username="grace.hopper")  # the right password
    # Words for staff would tell whoever holds a turned-off account's password that it exists,
    # is staff's, and that the password is right: a staff member reads what everyone reads.
    staff = auth.login(username="alan.turing")
    assert wrong.status_code == unknown.status_code == disabled.status_code == staff.status_code == 401
    assert problem(wrong) == problem(unknown) == problem(disabled) == problem(staff)
    assert "don't match" in problem(wrong)
    assert client.get("/").status_code == 302  # nobody signed in


def test_empty_form_asks_for_both_fields(client, auth, roster):
    response = auth.login(username="", password="")
    assert response.status_code == 400
    assert "Type your username and your password" in problem(response)


def test_signed_out_visitor_is_sent_to_sign_in_and_back(client, auth, roster):
    roster.person("ada.lovelace")
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    token = csrf_token(client, "/login?next=/launch/reading")
    response = client.post("/login", data={"username": "ada.lovelace", "password": "correct horse battery",
                                           "csrf_token": token, "next": "/launch/reading"})
    assert response.headers["Location"] == "/launch/reading"


@pytest.mark.parametrize("target", [
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "/\t/evil.example/",
    "/\n/evil.example/",
    "javascript:alert(1)",
    "http:/evil.example",
    "evil.example",
])
def test_next_cannot_leave_the_portal(client, roster, target):
    roster.person("ada.lovelace")
    token = csrf_token(client)
    response = client.post("/login", data={"username": "ada.lovelace", "password": "correct horse battery",
                                           "csrf_token": token, "next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_signed_in_visitor_skips_the_form(client, auth, roster):
    roster.person("ada.lovelace")
    auth.login()
    response = client.get("/login?next=//evil.example")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_sign_out_ends_the_session(client, auth, roster):
    roster.person("ada.lovelace")
    auth.login()
    cookie = client.get_cookie("portal_session").value
    response = auth.logout()
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert client.get_cookie("portal_session") is None
    # The old cookie, replayed, opens nothing.
    client.set_cookie("portal_session", cookie)
    assert client.get("/").status_code == 302


def test_sign_out_is_post_only(client, auth, roster):
    roster.person("ada.lovelace")
    auth.login()
    response = client.get("/logout")
    assert response.status_code == 405
    assert "That doesn&#39;t work here" in response.get_data(as_text=True)
    assert client.get("/").status_code == 200  # still signed in


def test_sign_in_is_recorded(client, auth, roster):
    person = roster.person("ada.lovelace", role=Role.student)
    auth.login()
    db.session.rollback()
    kinds = list(db.session.scalars(select(Event.kind).where(Event.person_id == person.id)))
    assert kinds == ["sign_in"]


def test_sign_in_page_shows_young_students_the_badge_way(client):
    # A six-year-old has a badge, not a password: the page says where that goes.
    page = client.get("/login").get_data(as_text=True)
    assert 'href="/badge"' in page and "Sign in with my badge" in page
    scanner = client.get("/badge")
    assert scanner.status_code == 200
    # No school here reads badges in the browser: the page says so and leads back.
    assert "classroom kiosk" in scanner.get_data(as_text=True)
    assert 'href="/login"' in scanner.get_data(as_text=True)


@pytest.mark.parametrize("role, words", [
    (Role.student, "Your teacher can tell you when they are ready."),
    (Role.teacher, "The district's administrators decide which apps each school and class gets."),
    (Role.district_admin, "The district's administrators decide which apps each school and class gets."),
])
def test_my_apps_with_none_speaks_to_the_person_who_reads_it(client, auth, roster, role, words):
    # A teacher with no apps was told that her teacher would say when they are ready.
    roster.person("ada.lovelace", role=role, schools=[roster.school()])
    auth.login()
    page = htmllib.unescape(client.get("/").get_data(as_text=True))
    assert "No apps here yet." in page and words in page
    assert ("Your teacher" in page) is (role is Role.student)


@pytest.mark.parametrize("role, words", [
    (Role.student, "Ask your teacher or the school office"),
    (Role.teacher, "A district administrator placed the hold: ask them, or the district office"),
])
def test_a_held_account_is_told_who_to_ask_in_words_for_its_role(client, auth, roster, role, words):
    from datetime import datetime, timezone
    person = roster.person("ada.lovelace", role=role)
    person.held_at = datetime.now(timezone.utc)
    db.session.commit()
    held = auth.login()
    assert held.status_code == 403 and "This account is on hold" in problem(held) and words in problem(held)
    assert ("teacher" in problem(held)) is (role is Role.student)
    stranger = auth.login(password="not it at all")   # the role, like the hold, is not told
    assert stranger.status_code == 401 and "hold" not in problem(stranger)


# A Chinese, Japanese or Korean input method left in full-width mode types these: they look like
# the ordinary letters, and a child cannot see why "ａｄａ" is refused.
WIDE_ADA = "Ａｄａ．Ｌｏｖｅｌａｃｅ\u3000"


def test_a_username_typed_in_full_width_letters_signs_in(client, auth, roster):
    roster.person("ada.lovelace")
    assert auth.login(username=WIDE_ADA).status_code == 302
    auth.logout()
    assert auth.login(username="ａｄａ.lovelace", password="not it at all").status_code == 401


def test_a_username_the_roster_holds_in_full_width_letters_is_found_as_typed(client, auth, roster):
    roster.person("ｈａｎａ")
    roster.person("hana", given="Hanako")
    assert auth.login(username="ｈａｎａ").status_code == 302
    assert "Hi, Ada!" in client.get("/").get_data(as_text=True)
