"""Opt-outs (portal.admin.optouts): a district admin keeps one student from one app whatever the
grants say (a family's choice), from the person's page or `portal users opt-out`. The one grant
check in portal.access reads it, so tiles, launches, codes, tokens and userinfo all obey at once."""
from __future__ import annotations

import re

import pytest

from portal.db import db
from portal.models import AppOptOut, Event
from tests.admin.helpers import cli, refused
from tests.admin.test_shared_pages import _client, _text, shared  # noqa: F401  (the fixture)
from tests.sso.test_oidc_support import exchange, get_code, oidc_world  # noqa: F401  (a fixture)


def _opt(app, admin_client, person, app_slug, which="out"):
    page = admin_client.get(f"/admin/people?username={person.username}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    return admin_client.post(f"/admin/people/{person.id}/opt-{which}", data={"app": app_slug, "csrf_token": token})


def _opted(app):
    with app.app_context():
        return sorted((o.person_id, o.app_id) for o in db.session.query(AppOptOut))


def _kinds(app):
    with app.app_context():
        return [e.kind for e in db.session.query(Event).order_by(Event.id) if e.kind.startswith("app_opted")]


def test_opting_out_takes_the_tile_away_and_refuses_the_launch(app, shared):
    admin, ada = _client(app, "dee.admin"), _client(app, "ada.lovelace")
    slug = shared["saml"].slug
    assert f"/launch/{slug}" in ada.get("/").get_data(as_text=True)
    answer = _opt(app, admin, shared["ada"], slug)
    assert answer.status_code == 303
    text = _text(admin.get(answer.headers["Location"]))
    assert "Ada Lovelace is opted out of Reading Garden" in text and "Opt back in to Reading Garden" in text
    assert _opted(app) == [(shared["ada"].id, shared["saml"].id)]
    assert "Opted out, whatever the grants say: Ada Lovelace" in _text(admin.get(f"/admin/apps/{slug}"))
    assert "Opted out" not in _text(_client(app, "far.admin").get(f"/admin/apps/{slug}"))
    assert f"/launch/{slug}" not in ada.get("/").get_data(as_text=True)
    assert "/launch/library" in ada.get("/").get_data(as_text=True)   # the other app is untouched
    assert ada.get(f"/launch/{slug}").status_code == 404
    # Opting out twice changes nothing; opting back in restores the grant's say.
    _opt(app, admin, shared["ada"], slug)
    assert len(_opted(app)) == 1 and _kinds(app) == ["app_opted_out"]
    _opt(app, admin, shared["ada"], slug, "in")
    assert _opted(app) == [] and _kinds(app) == ["app_opted_out", "app_opted_in"]
    assert ada.get(f"/launch/{slug}").status_code == 200
    assert "opted out of an app" in _text(admin.get("/admin/log"))


def test_an_opt_out_holds_for_codes_and_tokens_issued_before(app, client, auth, oidc_world, runner):
    from tests.sso.test_oidc_support import REDIRECT, query_of
    from tests.sso.test_oidc_support import authorize_url as url_for_code
    auth.login()
    code, verifier, _ = get_code(client, oidc_world)
    early_code, early_verifier, _ = get_code(client, oidc_world)
    token = exchange(client, oidc_world, code, verifier).json["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/oidc/userinfo", headers=bearer).status_code == 200

    assert "is opted out" in cli(runner, "users", "opt-out", oidc_world.student.username, oidc_world.app.name)
    assert client.get("/oidc/userinfo", headers=bearer).status_code == 401
    late = exchange(client, oidc_world, early_code, early_verifier)
    assert late.status_code == 400 and late.json["error"] == "invalid_grant" and "id_token" not in late.json
    answer = client.get(url_for_code(oidc_world, state="s"))
    assert answer.headers["Location"].startswith(REDIRECT)
    assert query_of(answer.headers["Location"])["error"] == "access_denied"

    assert "no longer opted out" in cli(runner, "users", "opt-in", oidc_world.student.username, oidc_world.app.slug)
    code, verifier, _ = get_code(client, oidc_world)
    assert "id_token" in exchange(client, oidc_world, code, verifier).json


def test_the_person_page_lists_the_apps_they_may_open(app, shared):
    admin = _client(app, "dee.admin")
    text = _text(admin.get("/admin/people?username=grace.hopper"))
    assert "Apps Grace Hopper may open" in text
    assert "Opt out of Library" in text and "Opt out of Reading Garden" in text
    assert "No app is granted to them" in _text(admin.get("/admin/people?username=dee.admin"))


@pytest.mark.parametrize("app_slug", ["no-such-app", "", "x" * 5000, "reading-garden\x00"])
def test_an_unknown_app_changes_nothing(app, shared, app_slug):
    admin = _client(app, "dee.admin")
    for which in ("out", "in"):
        answer = _opt(app, admin, shared["ada"], app_slug, which)
        if "\x00" in app_slug:     # refused before any view reads it, as everywhere
            assert answer.status_code == 400 and "Traceback" not in _text(answer)
            continue
        assert answer.status_code == 303
        assert "That app is not registered" in _text(admin.get(answer.headers["Location"]))
    assert _opted(app) == [] and _kinds(app) == []


def test_only_this_districts_admins_opt_anyone_out(app, shared):
    far = _client(app, "far.admin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', far.get("/admin/").get_data(as_text=True)).group(1)
    for which in ("out", "in"):
        assert far.post(f"/admin/people/{shared['ada'].id}/opt-{which}",
                        data={"app": shared["saml"].slug, "csrf_token": token}).status_code == 404
    for username in ("ada.lovelace", "tess.teacher"):
        client = _client(app, username)
        own = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").get_data(as_text=True))
        # With their own session's form token, so the role is what refuses (not the CSRF check).
        assert client.post(f"/admin/people/{shared['ada'].id}/opt-out",
                           data={"app": shared["saml"].slug, "csrf_token": own.group(1)}).status_code == 403
    assert _opted(app) == []


def test_the_command_line_refuses_in_one_line(app, shared, runner):
    assert "no user called" in refused(runner, "users", "opt-out", "nobody.here", "Library")
    assert "no app called" in refused(runner, "users", "opt-out", "ada.lovelace", "Nope")
    assert "was not opted out" in cli(runner, "users", "opt-in", "ada.lovelace", "Library")
    assert "is opted out" in cli(runner, "users", "opt-out", "ada.lovelace", "Library")
    assert "already opted out" in cli(runner, "users", "opt-out", "ada.lovelace", "library")
    assert _kinds(app) == ["app_opted_out"]


def test_an_opt_out_pressed_twice_at_once_is_one_opt_out_and_two_plain_answers(app, shared):
    # A double click: both found no opt-out, and the second insert was refused by the primary key
    # (a 500). Now the second changes nothing and answers as "already opted out" does.
    from datetime import datetime, timezone

    from portal.admin.optouts import opt_out
    from portal.models import App, Person
    from tests.admin.helpers import at_the_same_moment
    ada_id, app_id = shared["ada"].id, shared["saml"].id

    def press():
        return opt_out(db.session, db.session.get(Person, ada_id), db.session.get(App, app_id), actor=None,
                       now=datetime.now(timezone.utc))
    assert sorted(at_the_same_moment(app, AppOptOut, press, press)) == [False, True]
    assert _opted(app) == [(ada_id, app_id)]
    assert _kinds(app) == ["app_opted_out"]



def test_opting_back_in_pressed_twice_at_once_is_one_opt_in(app, shared):
    # Both presses found the opt-out; the ORM's delete of the row the other had just deleted
    # matched nothing, and both recorded an opt-in.
    from datetime import datetime, timezone

    from portal.admin.optouts import opt_in, opt_out
    from portal.models import App, Person
    from tests.admin.helpers import at_the_same_moment
    ada_id, app_id = shared["ada"].id, shared["saml"].id
    with app.app_context():
        assert opt_out(db.session, db.session.get(Person, ada_id), db.session.get(App, app_id), actor=None,
                       now=datetime.now(timezone.utc))

    def press():
        return opt_in(db.session, db.session.get(Person, ada_id), db.session.get(App, app_id), actor=None)
    assert sorted(at_the_same_moment(app, AppOptOut, press, press)) == [False, True]
    assert _opted(app) == []
    assert _kinds(app) == ["app_opted_out", "app_opted_in"]
