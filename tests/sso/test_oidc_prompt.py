"""prompt=consent and prompt=select_account (OpenID Connect Core 3.1.2.1).

consent: the district's grant of the app is the consent (no child is asked), so the launch goes
on. select_account: the portal has no list of accounts to pick from; the one at the keyboard says
who they are by signing in (on a shared Chromebook, whoever that is now)."""
from __future__ import annotations

import re
from html import unescape

import pytest
import requests

from portal.db import db
from tests.sso.test_oidc_claims import NOW
from tests.sso.test_oidc_support import (  # noqa: F401  (fixtures)
    PASSWORD, REDIRECT, Browser, authorize_url, csrf_of, get_code, live_portal, oidc_world, pkce_pair,
    query_of,
)


def test_prompt_consent_goes_on_for_a_signed_in_student(client, auth, oidc_world):
    auth.login()
    code, _, _ = get_code(client, oidc_world, prompt="consent")
    assert code


def test_prompt_consent_with_none_is_refused(client, auth, oidc_world):
    auth.login()
    for prompt in ("none consent", "none select_account"):
        answer = query_of(client.get(authorize_url(oidc_world, prompt=prompt, state="s")).headers["Location"])
        assert answer["error"] == "invalid_request" and answer["state"] == "s"


def test_must_sign_in_for_select_account():
    from portal.sso.oidc.claims import SignInState, must_sign_in
    assert must_sign_in(SignInState(NOW - 5), now=NOW, prompt="select_account", max_age=None, login_hint=None)
    assert not must_sign_in(SignInState(NOW - 5), now=NOW, prompt="consent", max_age=None, login_hint=None)
    # the sign-in it asked for satisfies it
    assert not must_sign_in(SignInState(NOW - 5, resumed_at=NOW - 6), now=NOW, prompt="select_account",
                            max_age=None, login_hint=None)


def test_prompt_select_account_lets_whoever_is_at_the_keyboard_sign_in(live_portal, roster, oidc_world):
    roster.person("alan.turing", schools=[oidc_world.school], given="Alan", family="Turing")
    db.session.commit()
    computer = Browser(live_portal)
    computer.sign_in()                                  # Ada left herself signed in
    verifier, challenge = pkce_pair()
    page = computer.http.get(authorize_url(oidc_world, base=live_portal, prompt="select_account",
                                           challenge=challenge), allow_redirects=False)
    assert page.status_code == 200 and "Sign in again to open Math Garden" in page.text
    assert re.search(r'name="username"[^>]*value=""', page.text)   # no one's name filled in
    next_url = unescape(re.search(r'name="next" value="([^"]+)"', page.text).group(1))
    signed = computer.http.post(f"{live_portal}/login", allow_redirects=False, data={
        "username": "alan.turing", "password": PASSWORD, "next": next_url, "csrf_token": csrf_of(page.text)})
    assert signed.status_code == 302 and signed.headers["Location"] == next_url
    back = computer.http.get(live_portal + next_url, allow_redirects=False)
    assert back.headers["Location"].startswith(REDIRECT + "?")
    token = requests.post(f"{live_portal}/oidc/token", auth=(oidc_world.client_id, oidc_world.client_secret),
                          data={"grant_type": "authorization_code", "code": query_of(back.headers["Location"])["code"],
                                "redirect_uri": REDIRECT, "code_verifier": verifier}, timeout=5).json()
    me = requests.get(f"{live_portal}/oidc/userinfo", timeout=5,
                      headers={"Authorization": f"Bearer {token['access_token']}"}).json()
    assert me["given_name"] == "Alan"


@pytest.mark.parametrize("prompt", ["login", "consent", "select_account"])
def test_discovery_names_the_prompts_the_portal_answers(client, prompt):
    assert prompt in client.get("/.well-known/openid-configuration").json["prompt_values_supported"]
