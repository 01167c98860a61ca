"""Authorization and logout requests sent by POST arrive without the portal's cookies (an app's
form posts cross-site; tests/sso/test_oidc_browser.py shows it in Chromium): the portal reads them
again by a same-site GET, and touches no session until then."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from werkzeug.datastructures import MultiDict

from tests.sso.test_oidc_logout import id_token_for, signed_in
from tests.sso.test_oidc_support import (  # noqa: F401  (fixtures)
    POST_LOGOUT, authorize_url, live_portal, oidc_world, query_of,
)


def authorization_form(world, **extra) -> MultiDict:
    return MultiDict(parse_qsl(urlsplit(authorize_url(world, **extra)).query))


def test_an_authorization_request_by_post_is_read_again_by_get(client, oidc_world):
    form = authorization_form(oidc_world, state="keep-me")
    form.add("nonce", "again")     # a repeat travels too, for the GET to refuse
    response = client.post("/oidc/authorize?ui_locales=en", data=form)
    assert response.status_code == 303
    target = urlsplit(response.headers["Location"])
    assert target.path == "/oidc/authorize" and not target.netloc
    assert parse_qsl(target.query) == [("ui_locales", "en"), *form.items(multi=True)]
    # No session was read or started: the student's own cookie is left alone.
    assert "Set-Cookie" not in response.headers
    params = query_of(client.get(response.headers["Location"]).headers["Location"])
    assert params["error"] == "invalid_request" and params["state"] == "keep-me"


def test_an_authorization_request_by_post_too_long_to_read_again_is_a_plain_page(client, oidc_world):
    response = client.post("/oidc/authorize", data=authorization_form(oidc_world, state="s" * 4000))
    assert response.status_code == 400 and "Location" not in response.headers
    assert "Set-Cookie" not in response.headers
    page = response.get_data(as_text=True)
    assert "sign-in did not work" in page and "at most 4000 characters" in page


def test_an_id_token_hint_sent_by_post_goes_into_no_address(client, auth, oidc_world):
    # Found by review of 3e1be31: the GET carried the ID token an app had posted to keep it out
    # of addresses (and the shared Chromebook's history). It is kept for the sign-in's length.
    auth.login()
    hint = id_token_for(client, oidc_world)
    form = authorization_form(oidc_world, state="hinted", prompt="none")
    form["id_token_hint"] = hint
    response = client.post("/oidc/authorize", data=form)
    assert response.status_code == 303 and "Set-Cookie" not in response.headers
    location = response.headers["Location"]
    assert hint not in location and hint.split(".")[1] not in location and "portal_hint=" in location
    params = query_of(client.get(location).headers["Location"])
    assert params["state"] == "hinted" and "code" in params, params
    # A name that is not kept (expired): a plain page, never a sign-in as whoever is signed in.
    page = client.get(location.replace("portal_hint=", "portal_hint=x"))
    assert page.status_code == 400 and "expired" in page.get_data(as_text=True)


def test_a_posted_hint_outlives_the_sign_in_it_sends_the_student_to(live_portal, oidc_world):
    # A real server (the Flask client keeps the previous session's CSRF token after a sign-out).
    from tests.sso.test_oidc_logout import Student
    from tests.sso.test_oidc_support import csrf_of
    computer = Student(live_portal)
    computer.sign_in()
    hint = computer.id_token(oidc_world)
    computer.sign_out()
    form = authorization_form(oidc_world, state="after-sign-in")
    form["id_token_hint"] = hint
    posted = computer.http.post(f"{live_portal}/oidc/authorize", data=list(form.items(multi=True)),
                                allow_redirects=False)
    to_login = computer.http.get(live_portal + posted.headers["Location"], allow_redirects=False)
    assert to_login.status_code == 302 and "/login" in to_login.headers["Location"]
    login_url = live_portal + to_login.headers["Location"]
    assert hint not in login_url and "portal_hint" in login_url
    page = computer.http.get(login_url)
    signed_in = computer.http.post(login_url, allow_redirects=False, data={
        "username": "ada.lovelace", "password": "correct horse battery", "csrf_token": csrf_of(page.text)})
    answer = computer.http.get(live_portal + signed_in.headers["Location"], allow_redirects=False)
    params = query_of(answer.headers["Location"])
    assert params["state"] == "after-sign-in" and "code" in params, params


def test_a_logout_request_by_post_is_kept_for_the_get_that_reads_it(client, auth, oidc_world):
    auth.login()
    hint = id_token_for(client, oidc_world)
    posted = client.post("/oidc/logout", data={
        "id_token_hint": hint, "post_logout_redirect_uri": POST_LOGOUT, "state": "bye-1", "other": "x"})
    assert posted.status_code == 303 and "Set-Cookie" not in posted.headers
    target = urlsplit(posted.headers["Location"])
    assert target.path == "/oidc/logout" and list(parse_qsl(target.query))[0][0] == "portal_parked"
    assert hint not in posted.headers["Location"] and signed_in(client)
    done = client.get(posted.headers["Location"])
    assert done.status_code == 302 and done.headers["Location"] == f"{POST_LOGOUT}?state=bye-1"
    assert not signed_in(client)


def test_a_kept_logout_request_is_read_once(client, auth, oidc_world):
    auth.login()
    kept = client.post("/oidc/logout", data={"post_logout_redirect_uri": POST_LOGOUT}).headers["Location"]

    def refused(address: str) -> bool:
        page = client.get(address)
        return page.status_code == 400 and "This sign-out request has expired" in page.get_data(as_text=True)

    assert refused(kept + "&state=x") and refused("/oidc/logout?portal_parked=nothing-kept")
    first = client.get(kept)
    assert first.status_code == 200 and "Sign out of the portal?" in first.get_data(as_text=True)
    assert refused(kept)
    assert signed_in(client)


def test_a_logout_request_by_post_too_long_to_keep_is_a_plain_page(client, auth, oidc_world):
    auth.login()
    refused = client.post("/oidc/logout", data={"state": "s" * 16_001})
    assert refused.status_code == 400 and "Location" not in refused.headers
    assert signed_in(client)
