"""RP-initiated logout: ends the portal session; redirects only to a registered address. Only an
ID token issued to the signed-in student during this sign-in signs them out without asking."""
from __future__ import annotations

import re
import time

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from portal.db import db
from tests.sso.test_oidc_support import (  # noqa: F401  (fixtures)
    POST_LOGOUT, REDIRECT, Browser, authorize_url, csrf_of, exchange, get_code, live_portal, oidc_world,
    pkce_pair, query_of,
)

ASKS_FIRST = "Sign out of the portal?"


def id_token_for(client, world) -> str:
    code, verifier, _ = get_code(client, world)
    return exchange(client, world, code, verifier).json["id_token"]


def signed_in(client) -> bool:
    return client.get("/").status_code == 200


def test_logout_with_id_token_hint_redirects_to_registered_uri(client, auth, oidc_world):
    auth.login()
    hint = id_token_for(client, oidc_world)
    response = client.get("/oidc/logout", query_string={
        "id_token_hint": hint, "post_logout_redirect_uri": POST_LOGOUT, "state": "bye-1"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"{POST_LOGOUT}?state=bye-1"
    assert not signed_in(client)


def test_logout_to_an_unregistered_uri_signs_out_without_redirecting(client, auth, oidc_world):
    auth.login()
    hint = id_token_for(client, oidc_world)
    response = client.get("/oidc/logout", query_string={
        "id_token_hint": hint, "post_logout_redirect_uri": "https://evil.test/"})
    assert response.status_code == 200 and "Location" not in response.headers
    assert "You are signed out" in response.get_data(as_text=True)
    assert not signed_in(client)


def test_forged_id_token_hint_gets_a_plain_page_and_no_sign_out(live_portal, oidc_world):
    browser = Browser(live_portal)
    browser.sign_in()
    forged = jwt.encode({"alg": "RS256"}, {"iss": live_portal, "aud": oidc_world.client_id, "sub": "x"},
                        RSAKey.generate_key(2048), algorithms=["RS256"])
    for hint in (forged, "not-a-jwt"):
        response = browser.http.get(f"{live_portal}/oidc/logout", allow_redirects=False, params={
            "id_token_hint": hint, "post_logout_redirect_uri": POST_LOGOUT})
        assert response.status_code == 400 and "Location" not in response.headers
    assert browser.http.get(f"{live_portal}/", allow_redirects=False).status_code == 200


def test_logout_without_hint_asks_first(live_portal, oidc_world):
    browser = Browser(live_portal)
    browser.sign_in()
    page = browser.http.get(f"{live_portal}/oidc/logout",
                            params={"post_logout_redirect_uri": POST_LOGOUT}, allow_redirects=False)
    assert page.status_code == 200 and "Sign out of the portal?" in page.text
    assert browser.http.get(f"{live_portal}/", allow_redirects=False).status_code == 200  # not yet
    done = browser.http.post(f"{live_portal}/oidc/logout/confirm", data={"csrf_token": csrf_of(page.text)},
                             allow_redirects=False)
    assert done.status_code == 200 and "You are signed out" in done.text
    assert browser.http.get(f"{live_portal}/", allow_redirects=False).status_code == 302


def test_logout_confirmation_needs_csrf(live_portal, oidc_world):
    browser = Browser(live_portal)
    browser.sign_in()
    response = browser.http.post(f"{live_portal}/oidc/logout/confirm", allow_redirects=False)
    assert response.status_code == 400
    assert browser.http.get(f"{live_portal}/", allow_redirects=False).status_code == 200


def test_id_token_hint_from_another_issuer_is_refused(client, auth, oidc_world, app):
    from portal.sso.oidc.keys import keys_dir, load_keys
    auth.login()
    ring = load_keys(keys_dir(app.config["SETTINGS"]))
    hint = ring.sign({"iss": "https://elsewhere.test", "aud": oidc_world.client_id, "sub": "x"})
    response = client.get("/oidc/logout", query_string={"id_token_hint": hint,
                                                         "post_logout_redirect_uri": POST_LOGOUT})
    assert response.status_code == 400 and "Location" not in response.headers


def logout_with(client, hint: str):
    return client.get("/oidc/logout", query_string={
        "id_token_hint": hint, "post_logout_redirect_uri": POST_LOGOUT, "state": "bye-2"})


class Student(Browser):
    """A student at the live portal (a real server thread: fresh request state every request, as in
    production; the Flask client keeps the previous session's CSRF token after a sign-out)."""

    def id_token(self, world) -> str:
        verifier, challenge = pkce_pair()
        location = self.follow(authorize_url(world, base=self.base, challenge=challenge))
        answer = requests.post(f"{self.base}/oidc/token", auth=(world.client_id, world.client_secret), data={
            "grant_type": "authorization_code", "code": query_of(location)["code"], "redirect_uri": REDIRECT,
            "code_verifier": verifier}, timeout=5)
        return answer.json()["id_token"]

    def sign_out(self) -> None:
        home = self.http.get(f"{self.base}/")
        self.http.post(f"{self.base}/logout", data={"csrf_token": csrf_of(home.text)}, allow_redirects=False)

    def log_out_with(self, hint: str):
        return self.http.get(f"{self.base}/oidc/logout", allow_redirects=False, params={
            "id_token_hint": hint, "post_logout_redirect_uri": POST_LOGOUT, "state": "bye-2"})

    def signed_in(self) -> bool:
        return self.http.get(f"{self.base}/", allow_redirects=False).status_code == 200

    def confirm(self, page):
        """Press "Sign out" on the page that asks first."""
        form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        return self.http.post(f"{self.base}/oidc/logout/confirm", data=form, allow_redirects=False)


def test_another_students_id_token_asks_before_signing_out(live_portal, roster, oidc_world):
    # A shared classroom computer: Ada's app still holds her ID token when Bob signs in.
    roster.person("bob.builder", schools=[oidc_world.school])
    db.session.commit()
    computer = Student(live_portal)
    computer.sign_in()
    adas = computer.id_token(oidc_world)
    computer.sign_out()
    computer.sign_in("bob.builder")
    page = computer.log_out_with(adas)
    assert page.status_code == 200 and "Location" not in page.headers and ASKS_FIRST in page.text
    assert computer.signed_in()
    done = computer.confirm(page)
    # The app that asked (for Ada) hears back at its checked address, with its state.
    assert done.status_code == 303 and done.headers["Location"] == f"{POST_LOGOUT}?state=bye-2"
    assert not computer.signed_in()


def test_an_id_token_from_an_earlier_sign_in_asks_first(live_portal, oidc_world):
    computer = Student(live_portal)
    computer.sign_in()
    earlier = computer.id_token(oidc_world)
    time.sleep(1)  # auth_time has one-second resolution
    computer.sign_out()
    computer.sign_in()
    page = computer.log_out_with(earlier)
    assert page.status_code == 200 and ASKS_FIRST in page.text
    assert computer.signed_in()
    # Found by review: once the student had said yes, the app never heard back.
    done = computer.confirm(page)
    assert done.status_code == 303 and done.headers["Location"] == f"{POST_LOGOUT}?state=bye-2"
    assert not computer.signed_in()


@pytest.mark.parametrize("sent, back", [
    ({"post_logout_redirect_uri": POST_LOGOUT, "state": "bye-3"}, f"{POST_LOGOUT}?state=bye-3"),
    ({"post_logout_redirect_uri": POST_LOGOUT}, POST_LOGOUT),
    ({"post_logout_redirect_uri": "https://evil.test/", "state": "bye-3"}, None),   # not registered
    ({"state": "bye-3"}, None),
])
def test_after_asking_an_app_named_by_client_id_hears_back(live_portal, oidc_world, sent, back):
    # No ID token: the student's own "Sign out" stands in for it, and the address must be one the
    # app registered (RP-Initiated Logout 1.0, section 3: "other means of confirming").
    computer = Student(live_portal)
    computer.sign_in()
    page = computer.http.get(f"{live_portal}/oidc/logout", allow_redirects=False,
                             params={"client_id": oidc_world.client_id, **sent})
    assert page.status_code == 200 and ASKS_FIRST in page.text and computer.signed_in()
    done = computer.confirm(page)
    if back is None:
        assert done.status_code == 200 and "You are signed out" in done.text
    else:
        assert done.status_code == 303 and done.headers["Location"] == back
    assert not computer.signed_in()


def test_without_a_client_id_the_logout_asks_and_stays(live_portal, oidc_world):
    computer = Student(live_portal)
    computer.sign_in()
    page = computer.http.get(f"{live_portal}/oidc/logout", allow_redirects=False,
                             params={"post_logout_redirect_uri": POST_LOGOUT, "state": "bye-4"})
    done = computer.confirm(page)
    assert done.status_code == 200 and "You are signed out" in done.text and not computer.signed_in()


def test_a_return_address_is_used_once(live_portal, oidc_world):
    computer = Student(live_portal)
    computer.sign_in()
    page = computer.http.get(f"{live_portal}/oidc/logout", allow_redirects=False, params={
        "client_id": oidc_world.client_id, "post_logout_redirect_uri": POST_LOGOUT, "state": "bye-5"})
    assert computer.confirm(page).status_code == 303
    computer.sign_in()
    fresh = computer.http.get(f"{live_portal}/", allow_redirects=False)
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    form["csrf_token"] = csrf_of(fresh.text)
    again = computer.http.post(f"{live_portal}/oidc/logout/confirm", data=form, allow_redirects=False)
    assert again.status_code == 200 and "You are signed out" in again.text


def test_an_id_token_of_this_sign_in_from_another_app_still_signs_out(client, auth, oidc_world):
    from tests.sso.test_oidc_support import OidcWorld, register_oidc_app
    other, secret = register_oidc_app(db.session, "Word Garden", school=oidc_world.school)
    db.session.commit()
    auth.login()
    hint = id_token_for(client, OidcWorld(oidc_world.school, oidc_world.section, oidc_world.student, other,
                                          other.client_id, secret))
    response = logout_with(client, hint)
    assert response.status_code == 302 and response.headers["Location"] == f"{POST_LOGOUT}?state=bye-2"
    assert not signed_in(client)


def test_logout_with_a_hint_and_no_session_redirects(client, auth, oidc_world):
    auth.login()
    hint = id_token_for(client, oidc_world)
    auth.logout()
    response = logout_with(client, hint)
    assert response.status_code == 302 and response.headers["Location"] == f"{POST_LOGOUT}?state=bye-2"


def test_asking_again_and_again_keeps_one_return_address_and_the_last_page_wins(live_portal, oidc_world,
                                                                                redis_client):
    # Found by review: every ask parked a new 15-minute key in Redis, as many as a signed-in
    # account cared to ask for. The address is kept in the session now, one at a time.
    computer = Student(live_portal)
    computer.sign_in()
    keys = len(list(redis_client.scan_iter("*")))
    pages = [computer.http.get(f"{live_portal}/oidc/logout", allow_redirects=False, params={
        "client_id": oidc_world.client_id, "post_logout_redirect_uri": POST_LOGOUT, "state": f"bye-{n}"})
        for n in range(50)]
    assert len(list(redis_client.scan_iter("*"))) <= keys + 1
    done = computer.confirm(pages[0])     # an older page: signs out, and goes nowhere it asked
    assert done.status_code == 200 and "You are signed out" in done.text and not computer.signed_in()
    computer.sign_in()
    last = [computer.http.get(f"{live_portal}/oidc/logout", allow_redirects=False, params={
        "client_id": oidc_world.client_id, "post_logout_redirect_uri": POST_LOGOUT, "state": f"bye-{n}"})
        for n in range(2)][-1]
    assert computer.confirm(last).headers["Location"] == f"{POST_LOGOUT}?state=bye-1"


def test_a_hint_signed_before_two_quick_rotations_still_signs_out(client, auth, oidc_world, runner):
    # `keys rotate --now` withdrew the key before the signing one however recently it had stopped
    # signing: a student whose app sent a logout with an ID token it signed was not signed out.
    auth.login()
    hint = id_token_for(client, oidc_world)
    for _ in range(2):
        assert runner.invoke(args=["keys", "rotate", "--now"]).exit_code == 0
    response = client.get("/oidc/logout", query_string={
        "id_token_hint": hint, "post_logout_redirect_uri": POST_LOGOUT, "state": "bye-2"})
    assert response.status_code == 302 and response.headers["Location"] == f"{POST_LOGOUT}?state=bye-2"
    assert not signed_in(client)
