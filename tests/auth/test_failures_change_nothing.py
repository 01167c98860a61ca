"""What goes wrong during sign-in or sign-out changes nothing it should not: a sign-in that fails
on its way signs no one in; the database away is the plain 503 page even for someone signed in,
who can still sign out; one IPv6 computer is one address to the sign-in limit; sessions kept
through a hold placed while Redis was away do not come back when it is lifted."""
from __future__ import annotations

from dataclasses import replace

import pytest
from flask import Blueprint

from portal import create_app
from portal.devserver import RedisProcess, free_port
from tests.auth.helpers import isolated_client
from tests.conftest import AuthActions, csrf_token


def _signed_in(client) -> bool:
    return client.get("/").status_code == 200


def test_a_sign_in_that_fails_on_its_way_signs_no_one_in(settings, app, roster):
    from portal.auth.services import sign_in
    from portal.db import db
    from portal.models import Person
    roster.person("ada.lovelace")
    failing = create_app({"SETTINGS": settings})
    failing.config["PROPAGATE_EXCEPTIONS"] = False
    bp = Blueprint("fails", __name__)

    @bp.route("/sign-in-then-fail")
    def sign_in_then_fail():
        sign_in(db.session.scalar(db.select(Person)), method="password")
        raise RuntimeError("the audit record could not be written")

    failing.register_blueprint(bp)
    browser = isolated_client(failing)
    answer = browser.get("/sign-in-then-fail")
    assert answer.status_code == 500 and "portal_session" not in answer.headers.get("Set-Cookie", "")
    assert not _signed_in(browser)
    # Someone already signed in keeps the session they had: the failure changed nothing.
    AuthActions(browser).login()
    assert browser.get("/sign-in-then-fail").status_code == 500
    assert _signed_in(browser)


def test_with_the_database_away_a_signed_in_person_meets_the_503_page_and_can_sign_out(
        settings, app, roster):
    roster.person("ada.lovelace")
    browser = isolated_client(app)
    AuthActions(browser).login()
    token = csrf_token(browser, "/")
    down = create_app({"SETTINGS": replace(
        settings, database_url="postgresql+psycopg://portal@127.0.0.1:1/portal")})
    down.config["PROPAGATE_EXCEPTIONS"] = False
    cookie = browser.get_cookie("portal_session").value
    away = isolated_client(down)
    away.set_cookie("portal_session", cookie)
    for path in ("/", "/login"):
        page = away.get(path)
        assert page.status_code == 503, page.get_data(as_text=True)[:300]
        assert "Sign-in is unavailable" in page.get_data(as_text=True)
    signed_out = away.post("/logout", data={"csrf_token": token})
    assert signed_out.status_code == 302
    assert not _signed_in(browser)   # the session is gone from Redis, for the working app too


@pytest.fixture
def address_limited(settings, app):
    return create_app({"SETTINGS": replace(settings, login_limit_per_address="3 per 15 minutes")})


def _guess(app, address: str, username: str) -> int:
    client = isolated_client(app)
    token = csrf_token(client)
    return client.post("/login", data={"username": username, "password": "wrong guess",
                                       "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address}).status_code


def test_one_ipv6_computer_is_one_address_to_the_sign_in_limit(address_limited, roster):
    answers = [_guess(address_limited, f"2001:db8:1:2::{n:x}", f"student{n}") for n in range(1, 6)]
    assert answers == [401, 401, 401, 429, 429]
    # Another /64 is another address; an IPv4 address written as IPv6 is that IPv4 address.
    assert _guess(address_limited, "2001:db8:1:3::1", "student9") == 401
    assert [_guess(address_limited, a, "student9") for a in ("192.0.2.7", "::ffff:192.0.2.7",
                                                             "192.0.2.7", "192.0.2.7")] == \
        [401, 401, 401, 429]


@pytest.fixture
def own_redis(tmp_path):
    proc = RedisProcess(tmp_path / "redis", port=free_port()).start()
    yield proc
    proc.stop()


def test_sessions_kept_through_a_hold_do_not_come_back_when_it_is_lifted(settings, app, roster,
                                                                         own_redis, runner):
    from portal.admin.holds import lift_hold, place_hold
    from portal.admin.services import AdminError
    from portal.badges.flow import utcnow
    from portal.db import db
    ada = roster.person("ada.lovelace")
    portal = create_app({"SETTINGS": replace(settings, redis_url=own_redis.url)})
    thief = isolated_client(portal)
    AuthActions(thief).login()
    client = portal.extensions["redis"]
    own_redis.stop()
    with portal.app_context():
        person = db.session.get(type(ada), ada.id)
        assert place_hold(db.session, client, person, actor=None, reason="stolen laptop",
                          now=utcnow()) is None
        with pytest.raises(AdminError, match="cannot be reached"):
            lift_hold(db.session, client, person, actor=None)
        assert db.session.get(type(ada), ada.id).held_at is not None   # the hold stays
    own_redis.start()
    assert not _signed_in(thief)                                        # held: refused
    with portal.app_context():
        lift_hold(db.session, client, db.session.get(type(ada), ada.id), actor=None)
    assert not _signed_in(thief)                                        # and ended, not revived
