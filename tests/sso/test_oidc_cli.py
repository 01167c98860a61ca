"""`portal apps add-oidc` and `portal keys rotate`: the scriptable interface."""
from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.db import db
from portal.models import App, AppKind
from portal.sso.oidc.claims import hash_secret
from portal.sso.oidc.keys import load_keys
from tests.sso.test_oidc_support import live_portal, oidc_world  # noqa: F401  (fixtures)

ADD = ["apps", "add-oidc", "Math Garden", "--redirect-uri", "https://math.test/cb",
       "--redirect-uri", "http://127.0.0.1:8000/cb", "--login-uri", "https://math.test/login"]


@pytest.fixture
def settings(base_settings, tmp_path):
    """A key folder of this test's own: rotating here leaves other tests' keys alone."""
    return replace(base_settings, oidc_keys_dir=str(tmp_path / "oidc_keys"))


def test_add_oidc_prints_credentials_once_and_stores_only_a_hash(app, runner):
    result = runner.invoke(args=ADD + ["--scope", "openid", "--scope", "profile"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    client_id, secret = lines["client_id"], lines["client_secret"]
    assert len(secret) >= 43
    with app.app_context():
        stored = db.session.scalar(select(App).where(App.client_id == client_id))
        assert stored.kind is AppKind.oidc and stored.name == "Math Garden"
        assert stored.settings["redirect_uris"] == ["https://math.test/cb", "http://127.0.0.1:8000/cb"]
        assert stored.settings["login_uri"] == "https://math.test/login"
        assert stored.settings["scopes"] == ["openid", "profile"]
        assert stored.settings["client_secret_sha256"] == hash_secret(secret)
        assert secret not in str(stored.settings) and secret not in result.stderr
        assert stored.released_fields == ["given_name", "family_name_initial"]  # least data by default


def one_line_failure(result, words):
    assert result.exit_code != 0
    message = result.output.strip()
    assert len(message.splitlines()) == 1 and words in message, message
    assert "Traceback" not in message


def add(name="Other", redirect="https://math.test/cb", login="https://math.test/login", *extra):
    return ["apps", "add-oidc", name, "--redirect-uri", redirect, "--login-uri", login, *extra]


def test_add_oidc_refuses_bad_input(app, runner):
    assert runner.invoke(args=ADD).exit_code == 0
    one_line_failure(runner.invoke(args=ADD), "exists already")
    one_line_failure(runner.invoke(args=add(redirect="http://math.test/cb")), "https://")
    one_line_failure(runner.invoke(args=add(login="http://math.test/login")), "login URI")
    one_line_failure(runner.invoke(args=add(redirect="https://math.test/cb#x")), "fragment")
    one_line_failure(runner.invoke(args=add("Other", "https://math.test/cb", "https://math.test/login",
                                            "--scope", "admin")), "unknown scope")
    assert runner.invoke(args=["apps", "add-oidc", "Other", "--login-uri", "https://x.test/"]).exit_code != 0


def test_keys_rotate_publishes_a_new_key_beside_the_old(app, runner):
    folder = Path(app.config["SETTINGS"].oidc_keys_dir)
    before = load_keys(folder).public_jwks()["keys"]
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    after = load_keys(folder).public_jwks()["keys"]
    assert len(after) == 2 and after[1]["kid"] == before[0]["kid"]
    lines = result.output.splitlines()
    assert lines[0].startswith(f"published: {after[0]['kid']} (signs from 20")
    assert lines[1:] == [f"signing with {before[0]['kid']}"]
    listed = runner.invoke(args=["keys", "list"]).output.splitlines()
    assert listed[0].startswith(f"{after[0]['kid']}\tsigns from 20")
    assert listed[1:] == [f"{after[1]['kid']}\tsigning"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.glob("*.pem"))

    now = runner.invoke(args=["keys", "rotate", "--now"])
    assert now.exit_code == 0, now.output
    newest = load_keys(folder).kids[1]   # after the key still waiting to sign
    assert now.output.splitlines()[1:] == [
        f"signing with {newest}",
        f"still published: {before[0]['kid']} (a leaked key? `portal keys rotate --now --retire` withdraws it)"]
    kids = load_keys(folder).kids
    one_line_failure(runner.invoke(args=["keys", "rotate", "--retire"]), "--retire needs --now")
    assert load_keys(folder).kids == kids
    withdrawn = runner.invoke(args=["keys", "rotate", "--now", "--retire"])
    assert withdrawn.exit_code == 0, withdrawn.output
    ring = load_keys(folder)
    assert f"retired: {newest}" in withdrawn.output and newest not in ring.kids
    # Nothing older than the new signing key is published; the key still waiting to sign stays.
    assert ring.kids == [after[0]["kid"], ring.signing_key().kid]


def test_keys_commands_name_a_file_that_is_not_a_key(app, runner):
    folder = Path(app.config["SETTINGS"].oidc_keys_dir)
    load_keys(folder)
    (folder / "notes.pem").write_text("not a key")
    for args in (["keys", "list"], ["keys", "rotate"]):
        one_line_failure(runner.invoke(args=args), "notes.pem is not an RSA private key")
    assert len(list(folder.glob("*.pem"))) == 2


@pytest.mark.parametrize("option, value, words", [
    ("--redirect-uri", "https://app.example/cb\x01", "invisible characters"),
    ("--redirect-uri", "https://app.example/c b", "spaces"),
    ("--redirect-uri", "https://*.example/cb", "wildcards"),
    ("--login-uri", "https://app.example/login\n2", "line breaks"),
])
def test_client_addresses_with_hidden_characters_are_refused(runner, option, value, words):
    args = ["apps", "add-oidc", "Hidden Chars", "--redirect-uri", "https://app.example/cb",
            "--login-uri", "https://app.example/login"]
    args[args.index(option) + 1] = value
    result = runner.invoke(args=args)
    assert result.exit_code != 0
    assert words in result.output


def test_an_overlong_app_name_is_refused(runner):
    result = runner.invoke(args=["apps", "add-oidc", "x" * 300, "--redirect-uri",
                                 "https://app.example/cb", "--login-uri", "https://app.example/login"])
    assert result.exit_code != 0
    assert "at most" in result.output


def test_keys_rotate_now_twice_keeps_the_key_that_signed_seconds_ago(app, runner):
    folder = Path(app.config["SETTINGS"].oidc_keys_dir)
    first = load_keys(folder).kids[0]
    for _ in range(2):
        result = runner.invoke(args=["keys", "rotate", "--now"])
        assert result.exit_code == 0 and "retired" not in result.output, result.output
    assert load_keys(folder).kids[2] == first
    assert f"still published: {first}" in result.output


def _flow_fails_with_secret(live_portal, world, secret):
    """Authlib's client, holding `secret`, is refused at the token endpoint (invalid_client)."""
    from authlib.integrations.base_client import OAuthError

    from tests.sso.test_oidc_flow import run_code_flow
    with pytest.raises(OAuthError) as refused:
        run_code_flow(live_portal, replace(world, client_secret=secret))
    assert refused.value.error == "invalid_client"


def test_new_secret_works_at_once_and_the_old_one_stops(live_portal, oidc_world, runner):
    from portal.models import Event
    from tests.sso.test_oidc_flow import run_code_flow
    run_code_flow(live_portal, oidc_world)     # the secret add-oidc printed works
    result = runner.invoke(args=["apps", "new-secret", "Math Garden"])
    assert result.exit_code == 0, result.output
    assert "the old one no longer works" in result.stdout
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    secret = lines["client_secret"]
    assert lines["client_id"] == oidc_world.client_id and len(secret) >= 43
    assert secret != oidc_world.client_secret and secret not in result.stderr

    _flow_fails_with_secret(live_portal, oidc_world, oidc_world.client_secret)
    config, oauth, token, _ = run_code_flow(live_portal, replace(oidc_world, client_secret=secret))
    assert oauth.get(config["userinfo_endpoint"]).status_code == 200
    db.session.rollback()   # see what the command and the server thread committed
    stored = db.session.get(App, oidc_world.app.id)
    assert stored.settings["client_secret_sha256"] == hash_secret(secret)   # as add-oidc stores it
    assert secret not in str(stored.settings)
    events = list(db.session.scalars(select(Event).where(Event.kind == "app_secret_replaced")))
    assert [(e.app_id, e.actor_id) for e in events] == [(stored.id, None)]
    assert secret not in str(events[0].data) and oidc_world.client_secret not in str(events[0].data)


def test_new_secret_for_an_app_without_one_is_one_line_and_changes_nothing(app, runner, tmp_path):
    from portal.models import Event
    from tests.sso.conftest import SP_ACS, SP_ENTITY_ID
    assert runner.invoke(args=["apps", "add-link", "Library", "https://library.test/"]).exit_code == 0
    assert runner.invoke(args=["apps", "add-saml", "Reading", "--entity-id", SP_ENTITY_ID,
                               "--acs-url", SP_ACS]).exit_code == 0
    with app.app_context():
        before = {a.name: dict(a.settings) for a in db.session.scalars(select(App))}
    one_line_failure(runner.invoke(args=["apps", "new-secret", "Library"]),
                     "Library does not sign in with OpenID Connect")
    one_line_failure(runner.invoke(args=["apps", "new-secret", "reading"]),
                     "Reading does not sign in with OpenID Connect")
    one_line_failure(runner.invoke(args=["apps", "new-secret", "Nope"]), "there is no app called 'Nope'")
    with app.app_context():
        assert {a.name: dict(a.settings) for a in db.session.scalars(select(App))} == before
        assert db.session.scalar(select(Event.id).where(Event.kind == "app_secret_replaced")) is None


NEW_REDIRECT = "https://learn.test/oidc/new-callback"
NEW_LOGIN = "https://new.learn.test/oidc/login"


def _code_flow_to(live_portal, world, redirect: str) -> dict:
    """Authlib's client, sending `redirect` as its redirect URI, through a signed-in browser."""
    import secrets

    from authlib.integrations.requests_client import OAuth2Session

    from tests.sso.test_oidc_flow import discover
    from tests.sso.test_oidc_support import Browser
    config = discover(live_portal)
    oauth = OAuth2Session(world.client_id, world.client_secret, scope="openid", redirect_uri=redirect,
                          code_challenge_method="S256")
    verifier = secrets.token_urlsafe(48)
    url, state = oauth.create_authorization_url(config["authorization_endpoint"], code_verifier=verifier,
                                                nonce=secrets.token_urlsafe(16))
    callback = Browser(live_portal).follow(url, until=redirect)
    return oauth.fetch_token(config["token_endpoint"], authorization_response=callback,
                             code_verifier=verifier, state=state)


def test_set_oidc_replaces_the_redirect_uris_and_the_login_uri(live_portal, oidc_world, runner, client, auth):
    from portal.models import Event
    from tests.sso.test_oidc_support import LOGIN_URI, REDIRECT
    with pytest.raises(AssertionError, match=" 400 "):      # not registered yet: refused
        _code_flow_to(live_portal, oidc_world, NEW_REDIRECT)
    result = runner.invoke(args=["apps", "set-oidc", "Math Garden", "--redirect-uri", NEW_REDIRECT,
                                 "--redirect-uri", "http://127.0.0.1:8000/cb", "--redirect-uri", NEW_REDIRECT])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Math Garden (math-garden) now has:",
        f"redirect URIs: {NEW_REDIRECT}, http://127.0.0.1:8000/cb",
        f"login URI: {LOGIN_URI}",
        "a tile launch lands at: https://learn.test/",
    ]
    assert "id_token" in _code_flow_to(live_portal, oidc_world, NEW_REDIRECT)
    with pytest.raises(AssertionError, match=" 400 "):      # replaced: refused at once
        _code_flow_to(live_portal, oidc_world, REDIRECT)

    result = runner.invoke(args=["apps", "set-oidc", "math-garden", "--login-uri", NEW_LOGIN])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == [
        f"redirect URIs: {NEW_REDIRECT}, http://127.0.0.1:8000/cb", f"login URI: {NEW_LOGIN}",
        "a tile launch lands at: https://new.learn.test/"]
    auth.login("ada.lovelace", "correct horse battery")
    launch = client.get("/launch/math-garden")
    assert launch.status_code == 302 and launch.headers["Location"].startswith(NEW_LOGIN + "?")
    assert "target_link_uri=https%3A%2F%2Fnew.learn.test%2F" in launch.headers["Location"]

    db.session.rollback()
    events = [e.data for e in db.session.scalars(select(Event).where(Event.kind == "app_settings_changed")
                                                 .order_by(Event.id))]
    assert events == [{"redirect_uris": [NEW_REDIRECT, "http://127.0.0.1:8000/cb"]}, {"login_uri": NEW_LOGIN}]


def test_set_oidc_keeps_a_target_link_uri_of_its_own(app, runner):
    assert runner.invoke(args=add("Other", "https://math.test/cb", "https://math.test/login",
                                  "--target-link-uri", "https://math.test/today")).exit_code == 0
    result = runner.invoke(args=["apps", "set-oidc", "Other", "--login-uri", NEW_LOGIN])
    assert result.exit_code == 0 and "a tile launch lands at: https://math.test/today" in result.output


def test_set_oidc_refuses_bad_input_as_add_oidc_does_and_changes_nothing(app, runner):
    from portal.models import Event
    assert runner.invoke(args=ADD).exit_code == 0
    assert runner.invoke(args=["apps", "add-link", "Library", "https://library.test/"]).exit_code == 0
    with app.app_context():
        before = dict(db.session.scalar(select(App).where(App.name == "Math Garden")).settings)
    set_oidc = ["apps", "set-oidc", "Math Garden"]
    one_line_failure(runner.invoke(args=set_oidc), "say what to change")
    one_line_failure(runner.invoke(args=set_oidc + ["--redirect-uri", "http://math.test/cb"]), "https://")
    one_line_failure(runner.invoke(args=set_oidc + ["--redirect-uri", "https://math.test/cb#x"]), "fragment")
    one_line_failure(runner.invoke(args=set_oidc + ["--redirect-uri", "https://*.math.test/cb"]), "wildcards")
    one_line_failure(runner.invoke(args=set_oidc + ["--redirect-uri", "https://math.test/a b"]), "spaces")
    one_line_failure(runner.invoke(args=set_oidc + ["--redirect-uri", NEW_REDIRECT,
                                                    "--login-uri", "http://math.test/login"]), "login URI")
    one_line_failure(runner.invoke(args=set_oidc + ["--login-uri", ""]), "login URI")
    one_line_failure(runner.invoke(args=["apps", "set-oidc", "Library", "--login-uri", NEW_LOGIN]),
                     "Library does not sign in with OpenID Connect")
    one_line_failure(runner.invoke(args=["apps", "set-oidc", "Nope", "--login-uri", NEW_LOGIN]),
                     "there is no app called 'Nope'")
    with app.app_context():
        assert db.session.scalar(select(App).where(App.name == "Math Garden")).settings == before
        assert db.session.scalar(select(Event.id).where(Event.kind == "app_settings_changed")) is None
