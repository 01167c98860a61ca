"""A script that is not signed in (never was, or its session ended) hears 401 in JSON; a browser
is still sent to the sign-in page."""
from __future__ import annotations

from tests.badges.conftest import csrf_from, login, staff_post

JSON = {"Accept": "application/json"}


def _signed_out(answer):
    assert answer.status_code == 401, answer.get_data(as_text=True)[:300]
    assert answer.is_json and "Location" not in answer.headers
    assert answer.json == {"error": "You are not signed in", "advice": "Sign in and try again."}


def test_a_script_asking_for_json_hears_it_is_signed_out(client, world):
    _signed_out(client.get(f"/badges/students/{world.student.id}", headers=JSON))
    _signed_out(client.get("/badges/reuse", headers=JSON))


def test_a_json_post_while_signed_out_hears_it_is_signed_out(client, world):
    # With a visitor's token, and with none at all: either way the person is not signed in.
    _signed_out(staff_post(client, csrf_from(client, "/login"), f"/badges/students/{world.student.id}/unlock"))
    _signed_out(client.post(f"/badges/students/{world.student.id}/unlock", json={}))


def test_a_script_whose_session_ended_hears_it_is_signed_out(client, world):
    token = login(client, "t.four")
    assert staff_post(client, token, f"/badges/students/{world.student.id}/unlock").status_code == 200
    client.post("/logout", data={"csrf_token": token})
    _signed_out(staff_post(client, token, f"/badges/students/{world.student.id}/unlock"))


def test_a_browser_is_still_sent_to_sign_in(client, world):
    page = client.get(f"/badges/students/{world.student.id}",
                      headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 302 and "/login?next=" in page.headers["Location"]
    assert client.get("/teacher/").status_code == 302


def test_a_signed_in_script_with_a_bad_token_still_hears_of_the_token(client, world):
    login(client, "t.four")
    answer = staff_post(client, "not-a-token", f"/badges/students/{world.student.id}/unlock")
    assert answer.status_code == 400 and answer.json["error"] == "This page was open too long"
