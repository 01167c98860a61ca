"""Who gets a launch and what an app receives: decided by portal.access, never by the OIDC code."""
from __future__ import annotations

from joserfc import jwt

from portal.db import db
from portal.models import Role
from tests.sso.test_oidc_support import (  # noqa: F401  (fixtures)
    REDIRECT, Browser, Credentials, authorize_url, exchange, get_code, live_portal, oidc_world, query_of,
    register_oidc_app,
)


def id_token_claims(token_response) -> dict:
    # The signature is checked in test_oidc_flow; here only the contents matter.
    return jwt.decode(token_response.json["id_token"], _any_key(), algorithms=["RS256"]).claims


def _any_key():
    from flask import current_app
    from portal.sso.oidc.keys import keys_dir, load_keys
    return load_keys(keys_dir(current_app.config["SETTINGS"])).public_key_set()


def test_student_not_granted_gets_access_denied_and_no_tile(client, auth, roster):
    school, other_school = roster.school("sch-a"), roster.school("sch-b")
    roster.person("ada.lovelace", schools=[other_school])
    app, _ = register_oidc_app(db.session, school=school)
    auth.login()
    response = client.get(authorize_url(Credentials(app.client_id), state="s"))
    assert response.status_code == 302
    answer = query_of(response.headers["Location"])
    assert response.headers["Location"].startswith(REDIRECT + "?")
    assert answer["error"] == "access_denied" and "code" not in answer
    assert client.get(f"/launch/{app.slug}").status_code == 404


def test_app_never_receives_a_field_not_released(client, auth, oidc_world):
    from portal.admin.services import release_fields
    oidc_world.student.email = "ada@example.org"
    oidc_world.student.student_number = "S-1"
    db.session.commit()
    release_fields(db.session, oidc_world.app.slug, ["given_name"])
    auth.login()
    code, verifier, _ = get_code(client, oidc_world, scope="openid profile email roster")
    token = exchange(client, oidc_world, code, verifier)
    claims = id_token_claims(token)
    user_claims = {k for k in claims if k not in {"iss", "aud", "exp", "iat", "auth_time", "nonce", "amr",
                                                   "at_hash"}}
    assert user_claims == {"sub", "given_name"}
    headers = {"Authorization": f"Bearer {token.json['access_token']}"}
    assert client.get("/oidc/userinfo", headers=headers).json == {"sub": claims["sub"], "given_name": "Ada"}

    # Releasing less takes effect at once, for tokens already issued too.
    release_fields(db.session, oidc_world.app.slug, [])
    assert client.get("/oidc/userinfo", headers=headers).json == {"sub": claims["sub"]}


def test_app_cannot_widen_its_scopes_beyond_registration(client, auth, roster):
    school = roster.school("sch-a")
    roster.person("ada.lovelace", schools=[school])
    app, secret = register_oidc_app(db.session, school=school, scopes=["openid"],
                                    release=["given_name", "grade"])
    world = Credentials(app.client_id, secret)
    auth.login()
    code, verifier, _ = get_code(client, world, scope="openid profile roster")
    token = exchange(client, world, code, verifier)
    assert token.json["scope"] == "openid"
    headers = {"Authorization": f"Bearer {token.json['access_token']}"}
    assert set(client.get("/oidc/userinfo", headers=headers).json) == {"sub"}


def test_subject_is_pairwise_per_app(client, auth, oidc_world):
    other, other_secret = register_oidc_app(db.session, "Reading Room", school=oidc_world.school)
    other_world = Credentials(other.client_id, other_secret)
    auth.login()
    subs = []
    for world in (oidc_world, other_world):
        code, verifier, _ = get_code(client, world)
        subs.append(id_token_claims(exchange(client, world, code, verifier))["sub"])
    assert subs[0] != subs[1]


def test_two_apps_are_not_told_the_second_the_student_signed_in(client, auth, oidc_world):
    """The same auth_time in every app's ID token would join the records pairwise subjects keep
    apart: it goes only to an app that asked (max_age), as OpenID Connect Core 2 requires."""
    other, other_secret = register_oidc_app(db.session, "Reading Room", school=oidc_world.school)
    other_world = Credentials(other.client_id, other_secret)
    auth.login()
    for world in (oidc_world, other_world):
        code, verifier, _ = get_code(client, world)
        assert "auth_time" not in id_token_claims(exchange(client, world, code, verifier))
    with client.session_transaction() as session:
        signed_in = session["auth_time"]
    code, verifier, _ = get_code(client, other_world, max_age="3600")
    assert id_token_claims(exchange(client, other_world, code, verifier))["auth_time"] == signed_in


def test_tokens_stop_working_when_the_grant_goes(client, auth, oidc_world):
    auth.login()
    code, verifier, _ = get_code(client, oidc_world)
    token = exchange(client, oidc_world, code, verifier).json["access_token"]
    for grant in list(oidc_world.app.grants):
        db.session.delete(grant)
    db.session.commit()
    response = client.get("/oidc/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_code_is_refused_when_the_grant_went_before_the_exchange(client, auth, oidc_world):
    auth.login()
    code, verifier, _ = get_code(client, oidc_world)
    for grant in list(oidc_world.app.grants):
        db.session.delete(grant)
    db.session.commit()
    assert exchange(client, oidc_world, code, verifier).json["error"] == "invalid_grant"


def test_releasing_less_before_the_exchange_narrows_the_id_token(client, auth, oidc_world):
    from portal.admin.services import release_fields
    auth.login()
    code, verifier, _ = get_code(client, oidc_world, scope="openid profile roster")
    release_fields(db.session, oidc_world.app.slug, ["given_name"])
    claims = id_token_claims(exchange(client, oidc_world, code, verifier))
    assert claims["given_name"] == "Ada"
    assert not {"name", "grade", "school", "sections"} & set(claims)


def test_id_token_holds_the_person_as_they_were_at_authorization(client, auth, oidc_world):
    auth.login()
    code, verifier, _ = get_code(client, oidc_world, scope="openid profile")
    oidc_world.student.preferred_name = "Augusta"
    db.session.commit()
    token = exchange(client, oidc_world, code, verifier)
    assert id_token_claims(token)["given_name"] == "Ada"
    # userinfo answers from the roster as it is now.
    headers = {"Authorization": f"Bearer {token.json['access_token']}"}
    assert client.get("/oidc/userinfo", headers=headers).json["given_name"] == "Augusta"


def test_code_is_refused_when_the_student_was_disabled_before_the_exchange(client, auth, oidc_world):
    auth.login()
    code, verifier, _ = get_code(client, oidc_world)
    oidc_world.student.enabled = False
    db.session.commit()
    assert exchange(client, oidc_world, code, verifier).json["error"] == "invalid_grant"


def test_tile_launch_sends_only_issuer_subject_hint_and_target(client, auth, oidc_world):
    auth.login()
    launch = client.get(f"/launch/{oidc_world.app.slug}")
    assert launch.status_code == 302
    sent = query_of(launch.headers["Location"])
    assert set(sent) == {"iss", "login_hint", "target_link_uri"}
    code, verifier, _ = get_code(client, oidc_world)
    assert id_token_claims(exchange(client, oidc_world, code, verifier))["sub"] == sent["login_hint"]


def test_login_hint_for_someone_else_asks_for_a_sign_in(live_portal, oidc_world, roster):
    from flask import current_app
    from portal.access import pairwise_subject
    roster.person("grace.hopper", schools=[oidc_world.school], given="Grace", family="Hopper",
                  role=Role.student)
    browser = Browser(live_portal)
    browser.sign_in("grace.hopper")
    # Ada's subject for the app, as a tile launch on Ada's computer sent it (a hint that is no
    # subject is only a hint: tests/sso/test_oidc_login_hint.py).
    ada = pairwise_subject(current_app.config["SETTINGS"].pairwise_key, oidc_world.student, oidc_world.app)
    url = authorize_url(oidc_world, base=live_portal, login_hint=ada)
    page = browser.http.get(url, allow_redirects=False)
    assert page.status_code == 200 and "Sign in again" in page.text
    assert 'value="grace.hopper"' not in page.text  # the next student does not see the last one's name


def test_userinfo_releases_are_recorded_once_per_token_and_fields(client, auth, oidc_world):
    from sqlalchemy import select

    from portal.admin.optouts import opt_out
    from portal.audit import purge_older_than
    from portal.models import Event
    from portal.admin.services import release_fields
    from datetime import datetime, timedelta, timezone
    release_fields(db.session, oidc_world.app.slug, ["given_name"])
    auth.login()
    code, verifier, _ = get_code(client, oidc_world, scope="openid profile")
    headers = {"Authorization": f"Bearer {exchange(client, oidc_world, code, verifier).json['access_token']}"}
    for _ in range(2):
        assert client.get("/oidc/userinfo", headers=headers).status_code == 200

    def reads():
        return [(e.person_id, e.app_id, e.data) for e in
                db.session.scalars(select(Event).where(Event.kind == "userinfo").order_by(Event.id))]
    expected = (oidc_world.student.id, oidc_world.app.id, {"protocol": "oidc", "fields": ["subject", "given_name"]})
    assert reads() == [expected]          # the same fields again under the same token: one record
    release_fields(db.session, oidc_world.app.slug, [])
    assert client.get("/oidc/userinfo", headers=headers).json == {"sub": client.get(
        "/oidc/userinfo", headers=headers).json["sub"]}
    less = (oidc_world.student.id, oidc_world.app.id, {"protocol": "oidc", "fields": ["subject"]})
    assert reads() == [expected, less]    # releasing less is a new release
    code, verifier, _ = get_code(client, oidc_world, scope="openid profile")
    other = {"Authorization": f"Bearer {exchange(client, oidc_world, code, verifier).json['access_token']}"}
    client.get("/oidc/userinfo", headers=other)
    assert reads() == [expected, less, less]   # another token: another record
    # Kept as long as the launch records are (age alone never purges them).
    for event in db.session.scalars(select(Event).where(Event.kind == "userinfo")):
        event.at = datetime.now(timezone.utc) - timedelta(days=400)
    db.session.commit()
    purge_older_than(30)
    assert len(reads()) == 3
    # A refused read records nothing.
    opt_out(db.session, oidc_world.student, oidc_world.app, actor=None, now=datetime.now(timezone.utc))
    assert client.get("/oidc/userinfo", headers=other).status_code == 401
    assert len(reads()) == 3


def test_an_identifying_value_released_is_recorded_by_its_keyed_hash(client, auth, oidc_world, runner):
    # The ID token's email and, after the roster changed it, userinfo's new one under the same
    # token: each a release the records must know of (the deletion letter gives the vendor only
    # a value the app received), yet neither value is kept in the records.
    from sqlalchemy import select

    from portal.access import identifier_hash
    from portal.admin.services import release_fields
    from portal.models import Event
    from flask import current_app
    key = current_app.config["SETTINGS"].pairwise_key
    release_fields(db.session, oidc_world.app.slug, ["given_name", "email", "student_number"])
    oidc_world.student.email, oidc_world.student.student_number = "ada@example.org", "S-1"
    db.session.commit()
    auth.login()
    code, verifier, _ = get_code(client, oidc_world, scope="openid profile email")   # no roster scope
    headers = {"Authorization": f"Bearer {exchange(client, oidc_world, code, verifier).json['access_token']}"}
    assert client.get("/oidc/userinfo", headers=headers).json["email"] == "ada@example.org"
    oidc_world.student.email = "augusta@example.org"
    db.session.commit()
    for _ in range(2):
        assert client.get("/oidc/userinfo", headers=headers).json["email"] == "augusta@example.org"
    records = [(e.kind, e.data) for e in db.session.scalars(
        select(Event).where(Event.kind.in_(("launch", "userinfo"))).order_by(Event.id))]
    fields = ["subject", "given_name", "email"]
    old, new = ({"email": identifier_hash(key, "email", email)}
                for email in ("ada@example.org", "augusta@example.org"))
    assert records == [("launch", {"protocol": "oidc", "fields": fields, "ids": old}),
                       ("userinfo", {"protocol": "oidc", "fields": fields, "ids": old}),
                       ("userinfo", {"protocol": "oidc", "fields": fields, "ids": new})]
    out = runner.invoke(args=["deletions", "ask", "ada.lovelace", oidc_world.app.name]).output
    assert "email address: augusta@example.org (you may also hold an earlier email address" in out
