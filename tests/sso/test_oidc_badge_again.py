"""prompt=login and max_age for a student who signs in with a badge: the portal asks for the
badge again (a six-year-old has no password to type), and the scan goes on to the app."""
from __future__ import annotations

import base64
import json
import time

from portal.badges.policy import set_policy
from portal.db import db
from tests.badges.conftest import enroll_kiosk, issue, past_claim
from tests.badges.test_factors import _pictures
from tests.sso.test_oidc_support import (  # noqa: F401  (fixtures)
    REDIRECT, authorize_url, exchange, get_code, oidc_world, pkce_pair, query_of,
)


def _claims(id_token: str) -> dict:
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_prompt_login_after_a_badge_asks_for_the_badge_and_the_scan_continues(
        app, redis_client, oidc_world):
    kiosk = enroll_kiosk(app, redis_client, oidc_world.school)
    token = issue(redis_client, oidc_world.student)
    assert kiosk.sign_in(token).status_code == 302
    verifier, challenge = pkce_pair()

    page = kiosk.browser.get(authorize_url(oidc_world, challenge=challenge, prompt="login"))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Sign in again to open Math Garden" in html
    assert "Hold your badge up to the camera again" in html and 'type="password"' not in html

    time.sleep(1)  # auth_time has one-second resolution
    handoff = kiosk.sign_in(token)
    next_url = past_claim(kiosk.browser, handoff.headers["Location"])
    assert next_url.startswith("/oidc/authorize?")
    answer = kiosk.browser.get(next_url)
    assert answer.status_code == 302 and answer.headers["Location"].startswith(REDIRECT + "?")
    code = query_of(answer.headers["Location"])["code"]
    tokens = exchange(kiosk.api, oidc_world, code, verifier)
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    assert _claims(tokens.json["id_token"])["amr"] == ["badge"]


def test_password_students_still_get_the_password_form(client, auth, oidc_world):
    auth.login()
    page = client.get(authorize_url(oidc_world, prompt="login"))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'type="password"' in html and "badge" not in html.lower()


def test_badge_with_pictures_says_picture_not_pin(app, redis_client, oidc_world):
    set_policy(db.session, oidc_world.school, second_factor_grades="02", factor="picture")
    kiosk = enroll_kiosk(app, redis_client, oidc_world.school)
    token = issue(redis_client, oidc_world.student)
    kiosk.sign_in(token)
    _pictures(kiosk.browser, "cat", "boat", "star")  # chosen at the first sign-in, then confirmed
    assert _pictures(kiosk.browser, "cat", "boat", "star").headers["Location"] == "/badges/home"
    code, verifier, _ = get_code(kiosk.browser, oidc_world)
    tokens = exchange(kiosk.api, oidc_world, code, verifier)
    assert _claims(tokens.json["id_token"])["amr"] == ["badge"]  # chosen, not yet checked
    kiosk.sign_in(token)
    assert _pictures(kiosk.browser, "cat", "boat", "star").headers["Location"] == "/badges/home"
    code, verifier, _ = get_code(kiosk.browser, oidc_world)
    tokens = exchange(kiosk.api, oidc_world, code, verifier)
    assert _claims(tokens.json["id_token"])["amr"] == ["badge", "picture", "mfa"]
