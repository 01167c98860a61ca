"""The way back from "sign in again": the marker /authorize adds to its own address stands for one
sign-in, for one request, once. Replaying it must not satisfy prompt=login or max_age."""
from __future__ import annotations

import re
import time
from html import unescape
from urllib.parse import urlencode

from portal.db import db
from tests.sso.test_oidc_support import (  # noqa: F401  (fixtures)
    PASSWORD, REDIRECT, Browser, OidcWorld, authorize_url, csrf_of, live_portal, oidc_world, query_of,
    register_oidc_app,
)

ASKED_AGAIN = "Sign in again to open"


def ask_again(client, world, **params) -> tuple[str, str, str]:
    """Ask for a fresh sign-in while signed in; return (page html, the way back, its marker)."""
    page = client.get(authorize_url(world, prompt="login", **params))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and ASKED_AGAIN in html
    next_url = unescape(re.search(r'name="next" value="([^"]+)"', html).group(1))
    return html, next_url, query_of(next_url)["portal_resume"]


def sign_in_again(client, html: str, next_url: str) -> None:
    signed = client.post("/login", data={"username": "ada.lovelace", "password": PASSWORD,
                                         "next": next_url, "csrf_token": csrf_of(html)})
    assert signed.status_code == 302 and signed.headers["Location"] == next_url


def is_asked_again(response) -> bool:
    return response.status_code == 200 and ASKED_AGAIN in response.get_data(as_text=True)


def gets_a_code(response) -> bool:
    location = response.headers.get("Location", "")
    return (response.status_code == 302 and location.startswith(REDIRECT + "?")
            and "code" in query_of(location))


def test_the_way_back_after_signing_in_again_gives_a_code_once(client, auth, oidc_world):
    auth.login()
    # No nonce: its own replay check would refuse the second visit, whatever the marker did.
    html, next_url, _ = ask_again(client, oidc_world, nonce=None)
    sign_in_again(client, html, next_url)
    assert gets_a_code(client.get(next_url))
    assert is_asked_again(client.get(next_url))


def test_an_old_marker_on_a_new_request_does_not_skip_the_sign_in(client, auth, oidc_world):
    # The auditor's probe: on a shared computer, an address from the history must not stand
    # for the fresh sign-in the next app asks for.
    auth.login()
    html, next_url, marker = ask_again(client, oidc_world)
    sign_in_again(client, html, next_url)
    assert gets_a_code(client.get(next_url))
    replay = authorize_url(oidc_world, prompt="login", max_age="0")
    assert is_asked_again(client.get(replay + "&" + urlencode({"portal_resume": marker})))


def test_an_unused_marker_belongs_to_its_own_request_and_app(client, auth, oidc_world):
    auth.login()
    html, next_url, marker = ask_again(client, oidc_world)
    sign_in_again(client, html, next_url)
    other_app, _ = register_oidc_app(db.session, "Word Garden", school=oidc_world.school)
    db.session.commit()
    other_world = OidcWorld(oidc_world.school, oidc_world.section, oidc_world.student, other_app,
                            other_app.client_id, "")
    elsewhere = {"portal_resume": marker}
    assert is_asked_again(client.get(authorize_url(oidc_world, prompt="login") + "&" + urlencode(elsewhere)))
    page = client.get(authorize_url(other_world, prompt="login") + "&" + urlencode(elsewhere))
    assert page.status_code == 200 and "Sign in again to open Word Garden" in page.get_data(as_text=True)
    # Tried elsewhere, the marker still serves the request it was made for.
    assert gets_a_code(client.get(next_url))


def test_a_marker_does_not_stand_for_a_sign_in_made_before_it(live_portal, oidc_world):
    # Browser one signed in before browser two was asked to sign in again: carrying two's marker
    # over to one is no fresh sign-in.
    one, two = Browser(live_portal), Browser(live_portal)
    one.sign_in()
    time.sleep(1)  # auth_time has one-second resolution
    two.sign_in()
    page = two.http.get(authorize_url(oidc_world, base=live_portal, max_age="0"), allow_redirects=False)
    assert page.status_code == 200 and ASKED_AGAIN in page.text
    next_url = unescape(re.search(r'name="next" value="([^"]+)"', page.text).group(1))
    carried = one.http.get(live_portal + next_url, allow_redirects=False)
    assert carried.status_code == 200 and ASKED_AGAIN in carried.text


def test_a_forged_marker_is_no_sign_in(client, auth, oidc_world):
    auth.login()
    for marker in ("x", "A" * 32, "A" * 5000, '"\\<>'):
        forged = authorize_url(oidc_world, prompt="login") + "&" + urlencode({"portal_resume": marker})
        assert is_asked_again(client.get(forged))

