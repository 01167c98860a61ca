"""`portal apps remove`: the app leaves every tile and nothing signs in to it (an OpenID app's
codes and tokens stop at once, a SAML app's requests are refused), while the records of what it
received, its deletion requests and the admin pages go on naming it. Against the same peers as
the sign-in tests: Authlib's client over real HTTP, python3-saml."""
from __future__ import annotations

import secrets
from dataclasses import replace

import pytest
from sqlalchemy import select

from portal.db import db
from portal.models import App, Event, Grant
from tests.admin.test_shared_pages import _client, _text, shared  # noqa: F401  (the fixture)
from tests.sso.conftest import saml_response_of
from tests.sso.test_oidc_support import Browser, live_portal, oidc_world  # noqa: F401  (fixtures)


@pytest.fixture
def settings(base_settings, tmp_path):
    """A key folder of this test's own (the OIDC keys are made in it)."""
    return replace(base_settings, oidc_keys_dir=str(tmp_path / "oidc_keys"))


def one_line_failure(result, words):
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.output, result.output


def test_removing_an_oidc_app_stops_its_codes_and_tokens_at_once(live_portal, oidc_world, runner, client, auth):
    from authlib.integrations.base_client import OAuthError

    from portal.admin.shared import releases_about
    from tests.sso.test_oidc_flow import app_client, run_code_flow
    config, oauth, token, _ = run_code_flow(live_portal, oidc_world)
    assert oauth.get(config["userinfo_endpoint"]).status_code == 200
    pending = app_client(oidc_world, config)      # a code issued, not yet exchanged
    verifier = secrets.token_urlsafe(48)
    url, state = pending.create_authorization_url(config["authorization_endpoint"], code_verifier=verifier,
                                                  nonce=secrets.token_urlsafe(16))
    callback = Browser(live_portal).follow(url)

    result = runner.invoke(args=["apps", "remove", "Math Garden", "--yes"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:3] == [
        "removed Math Garden (math-garden): it is on no tile and opens for no one",
        "its grants are gone: school sch-maple (Maple Elementary)",
        "its OpenID codes and tokens no longer work"]
    assert oauth.get(config["userinfo_endpoint"]).status_code == 401
    with pytest.raises(OAuthError) as refused:
        pending.fetch_token(config["token_endpoint"], authorization_response=callback, code_verifier=verifier,
                            state=state)
    assert refused.value.error == "invalid_client"
    with pytest.raises(AssertionError, match=" 400 "):
        run_code_flow(live_portal, oidc_world)

    auth.login()
    assert "Math Garden" not in client.get("/").get_data(as_text=True)
    assert client.get("/launch/math-garden").status_code == 404
    listed = runner.invoke(args=["apps", "list"]).output
    assert listed.startswith("Math Garden\toidc\thttps://learn.test/\tremoved on 20"), listed
    one_line_failure(runner.invoke(args=["apps", "grant", "Math Garden", "--district"]),
                     "Math Garden was removed on 20")
    one_line_failure(runner.invoke(args=["apps", "new-secret", "Math Garden"]), "was removed on")
    one_line_failure(runner.invoke(args=["apps", "add-link", "Math Garden", "https://x.test/"]),
                     "an app called 'Math Garden' was removed on")

    db.session.rollback()       # what the server thread and the commands committed
    removed = db.session.get(App, oidc_world.app.id)
    assert removed.name == "Math Garden" and removed.removed_at is not None
    assert db.session.scalar(select(Grant.id).where(Grant.app_id == removed.id)) is None
    [event] = db.session.scalars(select(Event).where(Event.kind == "app_removed"))
    assert (event.app_id, event.data) == (removed.id, {"grants": ["school sch-maple (Maple Elementary)"]})
    summaries, releases = releases_about(db.session, oidc_world.student)
    assert [(s.app_name, s.launches) for s in summaries] == [("Math Garden", 1)]
    assert {r.app.name for r in releases} == {"Math Garden"}

    asked = runner.invoke(args=["deletions", "ask", "ada.lovelace", "Math Garden"])
    assert asked.exit_code == 0, asked.output
    assert "\tMath Garden\t" in asked.output.splitlines()[0]

    # Restored and granted again (within the old token's life): it signs in anew, and the token
    # from before the removal stays dead (found by review: it worked again).
    assert runner.invoke(args=["apps", "restore", "Math Garden"]).exit_code == 0
    assert runner.invoke(args=["apps", "grant", "Math Garden", "--school", "sch-maple"]).exit_code == 0
    _, new_oauth, _, _ = run_code_flow(live_portal, oidc_world)
    assert new_oauth.get(config["userinfo_endpoint"]).status_code == 200
    assert oauth.get(config["userinfo_endpoint"]).status_code == 401


def test_a_removed_saml_app_is_refused_and_the_admin_pages_keep_its_name(app, shared, runner):
    from tests.sso.conftest import PeerSP
    from tests.sso.test_saml_not_granted import assert_denied_naming_no_one, denied_form
    ada = _client(app, "ada.lovelace")
    peer = PeerSP(ada.get("/saml/metadata").get_data(as_text=True))
    saml_response_of(ada.get(peer.redirect_login()[0]))

    asked_first = runner.invoke(args=["apps", "remove", "reading-garden"], input="n\n")
    assert asked_first.exit_code != 0 and "Remove the app?" in asked_first.output
    assert "Reading Garden" in _text(ada.get("/"))           # nothing changed
    result = runner.invoke(args=["apps", "remove", "reading-garden"], input="y\n")
    assert result.exit_code == 0, result.output
    assert "removed Reading Garden (reading-garden)" in result.output

    assert "Reading Garden" not in _text(ada.get("/"))
    assert ada.get("/launch/reading-garden").status_code == 404
    # Its own sign-in requests get the child's page and a signed RequestDenied naming no one.
    url, request_id = peer.redirect_login()
    assert_denied_naming_no_one(denied_form(ada.get(url)), peer, request_id, shared["ada"])

    admin = _client(app, "dee.admin")
    assert "Reading Garden" not in _text(admin.get("/admin/"))
    app_page = admin.get("/admin/apps/reading-garden")
    assert app_page.status_code == 200 and "Removed on " in _text(app_page)
    assert "Add this group" not in _text(app_page) and "Send these fields" not in _text(app_page)
    assert "Ada Lovelace" in _text(app_page)                  # its latest releases, kept
    person = _text(admin.get("/admin/people?username=ada.lovelace"))
    assert "Reading Garden" in person and "Ask Reading Garden to delete" in person
    log = _text(admin.get("/admin/log"))
    assert "opened an app" in log and "Reading Garden" in log
    from tests.admin.test_deletions import _ask
    asked = _ask(admin, shared["ada"], shared["saml"].slug)
    assert asked.status_code == 303, _text(asked)
    letter = _text(admin.get(asked.headers["Location"]))
    assert "Waiting for Reading Garden's vendor" in letter


def test_remove_refuses_bad_input_in_one_line(app, runner):
    assert runner.invoke(args=["apps", "add-link", "Library", "https://library.test/"]).exit_code == 0
    one_line_failure(runner.invoke(args=["apps", "remove", "Nope", "--yes"]), "there is no app called 'Nope'")
    result = runner.invoke(args=["apps", "remove", "Library", "--yes"])
    assert result.exit_code == 0 and "it had no grants" in result.output
    assert "OpenID" not in result.output
    one_line_failure(runner.invoke(args=["apps", "remove", "Library", "--yes"]), "Library was removed on 20")
    with app.app_context():
        assert db.session.scalar(select(Event.id).where(Event.kind == "app_removed").offset(1)) is None


def test_a_grant_made_as_the_app_was_removed_opens_nothing(app, shared, runner):
    # Found by review: a grant the admin's page added at the very moment of `apps remove` (its
    # check before the removal, its write after) outlived the removal, and the tile and the SAML
    # launch came back for a retired app. Removal no longer rests on the grants being gone.
    from portal.admin.services import grant_app
    ada = _client(app, "ada.lovelace")
    assert runner.invoke(args=["apps", "remove", "reading-garden", "--yes"]).exit_code == 0
    with app.app_context():                         # as the racing grant's write lands
        removed = db.session.scalar(select(App).where(App.slug == "reading-garden"))
        db.session.add(Grant(app_id=removed.id, district_id=shared["ada"].district_id))
        db.session.commit()
        with pytest.raises(Exception, match="removed"):
            grant_app(db.session, "reading-garden", district=True)
    assert "Reading Garden" not in _text(ada.get("/"))
    assert ada.get("/launch/reading-garden").status_code == 404


def test_the_admins_page_opts_no_one_out_of_or_into_a_removed_app(app, shared, runner):
    # Found by review: the command line refused it; the person's page wrote an opt-out.
    from portal.models import AppOptOut
    from tests.admin.test_shared_pages import _post
    assert runner.invoke(args=["apps", "remove", "reading-garden", "--yes"]).exit_code == 0
    admin = _client(app, "dee.admin")
    for action in ("opt-out", "opt-in"):
        answer = _post(admin, f"/admin/people/{shared['ada'].id}/{action}", app="reading-garden")
        assert answer.status_code == 303
        assert "Reading Garden was removed: nothing changed." in _text(admin.get(answer.headers["Location"]))
    with app.app_context():
        assert db.session.scalar(select(AppOptOut.person_id)) is None
        assert db.session.scalar(select(Event.id).where(Event.kind.in_(("app_opted_out", "app_opted_in")))) is None


def test_the_removal_date_in_refusals_is_the_districts(app, settings, runner):
    # An app removed at 20:00 in Chicago on Mar 3 (UTC's Mar 4): `apps list` said Mar 3, and the
    # refusals to grant it, to take its name or its SAML entity ID said Mar 4.
    from datetime import datetime, timezone
    app.config["SETTINGS"] = replace(settings, timezone="America/Chicago")
    from tests.sso.conftest import SP_ACS, SP_ENTITY_ID
    from tests.sso.test_saml_cli import add_saml
    assert runner.invoke(args=["apps", "add-link", "Library", "https://library.test/"]).exit_code == 0
    assert add_saml(runner, "Reader", "--entity-id", SP_ENTITY_ID, "--acs-url", SP_ACS).exit_code == 0
    for name in ("Library", "Reader"):
        assert runner.invoke(args=["apps", "remove", name, "--yes"]).exit_code == 0
    with app.app_context():
        db.session.query(App).update({"removed_at": datetime(2026, 3, 4, 2, 0, tzinfo=timezone.utc)})
        db.session.commit()
    assert "removed on 2026-03-03" in runner.invoke(args=["apps", "list"]).output
    one_line_failure(runner.invoke(args=["apps", "grant", "Library", "--district"]),
                     "Library was removed on 2026-03-03;")
    one_line_failure(runner.invoke(args=["apps", "add-link", "Library", "https://x.test/"]),
                     "an app called 'Library' was removed on 2026-03-03 and")
    again = add_saml(runner, "Reader 2", "--entity-id", SP_ENTITY_ID, "--acs-url", SP_ACS)
    assert again.exit_code != 0 and "(Reader, removed on 2026-03-03)" in again.output, again.output


def test_a_removed_app_can_be_restored_and_granted_again(app, shared, runner):
    # An app removed by mistake could never come back: its name and its SAML entity ID stay
    # taken, so its vendor could not even be registered again.
    from tests.sso.conftest import PeerSP
    ada = _client(app, "ada.lovelace")
    peer = PeerSP(ada.get("/saml/metadata").get_data(as_text=True))
    removed = runner.invoke(args=["apps", "remove", "reading-garden", "--yes"])
    assert removed.exit_code == 0, removed.output
    [gone] = [line for line in removed.output.splitlines() if line.startswith("its grants are gone: ")]
    grants = gone.removeprefix("its grants are gone: ")

    result = runner.invoke(args=["apps", "restore", "reading-garden"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "restored Reading Garden (reading-garden): it opens again for whoever it is granted to, "
        "and it is granted to no one yet",
        f"when it was removed it was granted to: {grants}",
        "grant it again with `portal apps grant 'Reading Garden' ...`"]
    listed = runner.invoke(args=["apps", "list"]).output
    assert "Reading Garden\tsaml\t" in listed and "removed on" not in listed and "not granted to anyone" in listed
    assert "Reading Garden" not in _text(ada.get("/"))          # no grant yet
    assert ada.get("/launch/reading-garden").status_code == 404

    assert runner.invoke(args=["apps", "grant", "reading-garden", "--school", "sch-maple"]).exit_code == 0
    assert "Reading Garden" in _text(ada.get("/"))
    assert saml_response_of(ada.get(peer.redirect_login()[0]))   # signs in again, same entity ID
    admin = _client(app, "dee.admin")
    assert "removed app back in use (not granted)" in _text(admin.get("/admin/log"))
    with app.app_context():
        kinds = list(db.session.scalars(select(Event.kind).where(Event.kind.like("app_%")).order_by(Event.id)))
        assert kinds[-3:] == ["app_removed", "app_restored", "app_granted"]


def test_restore_refuses_in_one_line_and_changes_nothing(app, runner):
    one_line_failure(runner.invoke(args=["apps", "restore", "Nope"]), "there is no app called 'Nope'")
    assert runner.invoke(args=["apps", "add-oidc", "Math", "--redirect-uri", "https://math.test/cb", "--login-uri", "https://math.test/login"]).exit_code == 0
    one_line_failure(runner.invoke(args=["apps", "restore", "Math"]), "Math is in use, not removed; nothing changed")
    assert runner.invoke(args=["apps", "remove", "Math", "--yes"]).exit_code == 0
    result = runner.invoke(args=["apps", "restore", "Math"])
    assert result.exit_code == 0 and "when it was removed" not in result.output   # it had no grants
    assert result.output.splitlines()[1:] == [
        "grant it again with `portal apps grant Math ...`",
        "its OpenID client secret works again: if it may have leaked, run `portal apps new-secret Math`"]
    with app.app_context():
        assert [e for e in db.session.scalars(select(Event.kind).where(Event.kind == "app_restored"))] == ["app_restored"]


def test_restore_says_when_the_record_of_its_grants_was_purged(app, runner):
    # Found by review: after `portal audit purge` took the removal's record, restore printed
    # nothing of the grants, as for an app that had none.
    from datetime import datetime, timedelta, timezone
    assert runner.invoke(args=["apps", "add-link", "Library", "https://library.test/"]).exit_code == 0
    assert runner.invoke(args=["apps", "remove", "Library", "--yes"]).exit_code == 0
    with app.app_context():
        db.session.query(Event).filter(Event.kind == "app_removed").update(
            {"at": datetime.now(timezone.utc) - timedelta(days=400)})
        db.session.commit()
    assert runner.invoke(args=["audit", "purge", "--older-than", "365"]).exit_code == 0
    result = runner.invoke(args=["apps", "restore", "Library"])
    assert result.exit_code == 0 and result.output.splitlines()[1] == (
        "the record of whom it was granted to when it was removed is gone (`portal audit purge` "
        "deletes old app changes)")
