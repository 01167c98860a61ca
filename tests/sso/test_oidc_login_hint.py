"""login_hint (OpenID Connect Core 3.1.2.1): a hint for signing in "if necessary". Only a hint shaped
like this app's pairwise subject (what a tile launch sends) that is not the signed-in student's asks
for a new sign-in; a username or an email an app remembered goes on as whoever is signed in (an app
that sends one during silent sign-in looped on "Sign in again" or login_required), and with nobody
signed in asks for a sign-in as before."""
from __future__ import annotations

import re

import pytest
from flask import current_app

from portal.access import pairwise_subject
from portal.db import db
from portal.models import Role
from tests.sso.test_oidc_access import id_token_claims
from tests.sso.test_oidc_support import (  # noqa: F401  (fixtures)
    REDIRECT, Browser, authorize_url, exchange, get_code, live_portal, oidc_world, query_of,
    register_oidc_app,
)

EMAIL = "ada.lovelace@students.maple.example"


@pytest.fixture
def grace(oidc_world, roster):
    person = roster.person("grace.hopper", schools=[oidc_world.school], given="Grace", family="Hopper",
                           role=Role.student)
    person.email = "grace.hopper@students.maple.example"
    oidc_world.student.email = EMAIL
    db.session.commit()
    return person


def subject_of(person, app) -> str:
    return pairwise_subject(current_app.config["SETTINGS"].pairwise_key, person, app)


def sub_of_code(client, world, **params) -> str:
    code, verifier, _ = get_code(client, world, **params)
    return id_token_claims(exchange(client, world, code, verifier))["sub"]


@pytest.mark.parametrize("hint", ["ada.lovelace", "Ada.Lovelace", EMAIL, "grace.hopper",
                                  "grace.hopper@students.maple.example", "nobody.here", '"\\'])
@pytest.mark.parametrize("prompt", [None, "none"])
def test_a_hint_that_is_not_a_subject_goes_on_as_the_signed_in_student(client, auth, oidc_world, grace,
                                                                         hint, prompt):
    auth.login()
    # The code is Ada's whatever the hint says: the ID token tells the app who signed in.
    assert sub_of_code(client, oidc_world, login_hint=hint, prompt=prompt) == subject_of(
        oidc_world.student, oidc_world.app)


def test_an_app_that_sends_the_email_during_silent_sign_in_gets_a_code(live_portal, oidc_world, grace):
    browser = Browser(live_portal)
    browser.sign_in()
    url = authorize_url(oidc_world, base=live_portal, prompt="none", login_hint=EMAIL, state="s")
    answer = browser.http.get(url, allow_redirects=False)
    assert answer.status_code == 302 and answer.headers["Location"].startswith(REDIRECT + "?")
    assert "code" in query_of(answer.headers["Location"]) and "error" not in query_of(answer.headers["Location"])


def test_a_subject_hint_that_is_not_the_signed_in_students_asks_for_a_sign_in(client, auth, oidc_world, grace):
    other_app, _ = register_oidc_app(db.session, "Reading Room", school=oidc_world.school)
    auth.login()
    for hint in (subject_of(grace, oidc_world.app),              # another student's, for this app
                 subject_of(oidc_world.student, other_app),      # Ada's, for another app
                 "a" * 32, "2" * 32):                            # the shape alone is enough
        page = client.get(authorize_url(oidc_world, login_hint=hint))
        assert page.status_code == 200 and "Sign in again" in page.get_data(as_text=True)
        assert re.search(r'name="username"[^>]*value=""', page.get_data(as_text=True))   # no one's name
        silent = client.get(authorize_url(oidc_world, login_hint=hint, prompt="none", state="s"))
        assert query_of(silent.headers["Location"])["error"] == "login_required"
    # Ada's own, as the tile launch sends it, goes on.
    mine = subject_of(oidc_world.student, oidc_world.app)
    assert sub_of_code(client, oidc_world, login_hint=mine, prompt="none") == mine


def test_only_the_subjects_exact_shape_is_a_subject(oidc_world):
    from portal.access import shaped_like_subject
    mine = subject_of(oidc_world.student, oidc_world.app)
    assert shaped_like_subject(mine) and len(mine) == 32
    for text in (mine[:-1], mine + "a", mine.upper(), "a" * 31 + "1", "a" * 31 + "=", " " + mine[1:],
                 mine + "\n", "ada.lovelace", ""):
        assert not shaped_like_subject(text), text


def test_with_nobody_signed_in_prompt_none_is_still_login_required(client, oidc_world):
    answer = client.get(authorize_url(oidc_world, login_hint="ada.lovelace", prompt="none", state="s"))
    assert query_of(answer.headers["Location"])["error"] == "login_required"
