"""Server-side sessions: the cookie, rotation, time-outs, and ending a person's sessions."""
import base64
import json
import time
from dataclasses import replace

import pytest
from flask import Blueprint, session

from portal import create_app
from portal.sessions import PERSON_INDEX, PREFIX, end_sessions_for
from tests.auth.helpers import isolated_client
from tests.conftest import csrf_token

COOKIE = "portal_session"


@pytest.fixture
def client(app):
    return isolated_client(app)


def sid_of(client) -> str:
    return client.get_cookie(COOKIE).value.rsplit(".", 1)[0]


def set_cookie_header(response, name: str = COOKIE) -> str:
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(name + "=")]
    return header


def signed_in(client) -> bool:
    return client.get("/").status_code == 200


def test_cookie_is_httponly_and_samesite_lax_but_not_secure_in_testing(client):
    header = set_cookie_header(client.get("/login"))
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Secure" not in header


def test_cookie_is_secure_in_production(settings):
    app = create_app({"SETTINGS": replace(settings, env="production")})
    assert not app.testing
    client = app.test_client()
    header = set_cookie_header(client.get("/login", base_url="https://portal.example"),
                               "__Host-portal_session")   # only this host may set it
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header


def test_cookie_holds_only_a_signed_random_id(client, auth, roster, redis_client):
    person = roster.person("ada.lovelace")
    auth.login()
    value = client.get_cookie(COOKIE).value
    sid, signature = value.split(".")  # an id and its signature, no payload
    assert len(base64.urlsafe_b64decode(sid + "==")) >= 16  # at least 128 random bits
    auth.logout()
    auth.login()
    assert client.get_cookie(COOKIE).value.split(".")[0] != sid  # random, not derived from the person
    sid = sid_of(client)
    stored = json.loads(redis_client.get(PREFIX + sid))
    assert stored["_user_id"] == str(person.id)
    # A forged signature opens nothing.
    signature = client.get_cookie(COOKIE).value.split(".")[1]
    client.set_cookie(COOKIE, sid + "." + ("A" if signature[0] != "A" else "B") + signature[1:])
    assert not signed_in(client)


def stored_sessions(redis_client) -> int:
    return sum(1 for _ in redis_client.scan_iter(PREFIX + "*"))


def test_visitors_who_sign_in_to_nothing_store_nothing(app, client, auth, roster, redis_client):
    """The sign-in page is open to anyone, so loading it must not be a way to fill Redis: it
    hands out a cookie and a form whose token is derived from the cookie's id, and stores none."""
    roster.person("ada.lovelace")
    for _ in range(25):
        response = isolated_client(app).get("/login")
        assert response.status_code == 200 and COOKIE in set_cookie_header(response)
    assert stored_sessions(redis_client) == 0
    # The visitor's id stays across pages (no new cookie), and the first page's token still holds.
    token = csrf_token(client)
    first = client.get_cookie(COOKIE).value
    assert not any(h.startswith(COOKIE + "=") for h in client.get("/login").headers.getlist("Set-Cookie"))
    assert client.get_cookie(COOKIE).value == first and stored_sessions(redis_client) == 0
    response = client.post("/login", data={"username": "ada.lovelace",
                                           "password": "correct horse battery", "csrf_token": token})
    assert response.status_code == 302 and signed_in(client)
    assert client.get_cookie(COOKIE).value != first      # a new id at sign-in, as always
    assert stored_sessions(redis_client) == 1


def test_a_visitors_token_is_good_only_with_that_visitors_cookie(app, roster, redis_client):
    roster.person("ada.lovelace")
    mallory, victim = isolated_client(app), isolated_client(app)
    token = csrf_token(mallory)             # the attacker's own page: a token for their own id
    victim.get("/login")
    form = {"username": "ada.lovelace", "password": "correct horse battery", "csrf_token": token}
    response = victim.post("/login", data=form)
    assert response.status_code == 400 and "open too long" in response.get_data(as_text=True)
    assert not signed_in(victim)
    # No cookie at all, or one whose signature is not the portal's: the same.
    stranger = isolated_client(app)
    assert stranger.post("/login", data=form).status_code == 400
    stranger.set_cookie(COOKIE, mallory.get_cookie(COOKIE).value.split(".")[0] + ".forged")
    assert stranger.post("/login", data=form).status_code == 400
    assert stored_sessions(redis_client) == 0


def test_a_visitors_cookie_never_opens_a_stored_session(app, client, auth, roster):
    """A visitor's cookie is signed for a visitor and is read without Redis: even one for the
    id of a stored session (which only the portal could sign) opens nothing stored."""
    roster.person("ada.lovelace")
    auth.login()
    sid = sid_of(client)
    signer = app.session_interface._signer(app, visitor=True)
    thief = isolated_client(app)
    thief.set_cookie(COOKIE, signer.sign(sid).decode())
    assert not signed_in(thief)
    assert signed_in(client)


def test_answers_without_a_form_set_no_cookie(app, redis_client):
    for path in ("/", "/.well-known/openid-configuration", "/saml/metadata"):
        response = isolated_client(app).get(path)
        assert response.status_code in (200, 302)
        assert COOKIE not in " ".join(response.headers.getlist("Set-Cookie")), path
    assert stored_sessions(redis_client) == 0


def test_sign_in_rotates_the_session_id(app, client, auth, roster, redis_client):
    roster.person("ada.lovelace")
    client.get("/login")
    before = client.get_cookie(COOKIE).value
    auth.login()
    after = client.get_cookie(COOKIE).value
    assert after != before
    assert redis_client.get(PREFIX + before.rsplit(".", 1)[0]) is None
    # Whoever held the old cookie is not signed in.
    attacker = app.test_client()
    attacker.set_cookie(COOKIE, before)
    assert not signed_in(attacker)
    assert signed_in(client)


def test_idle_session_times_out(client, auth, roster, redis_client):
    roster.person("ada.lovelace")
    auth.login()
    assert redis_client.ttl(PREFIX + sid_of(client)) == 60 * 60
    redis_client.pexpire(PREFIX + sid_of(client), 30)
    time.sleep(0.1)
    assert not signed_in(client)


def test_activity_keeps_a_session_alive(client, auth, roster, redis_client):
    roster.person("ada.lovelace")
    auth.login()
    redis_client.expire(PREFIX + sid_of(client), 5)
    assert signed_in(client)
    assert redis_client.ttl(PREFIX + sid_of(client)) > 60 * 59


def test_session_ends_at_the_absolute_time_out_even_when_active(client, auth, roster, redis_client,
                                                                settings):
    roster.person("ada.lovelace")
    auth.login()
    key = PREFIX + sid_of(client)
    data = json.loads(redis_client.get(key))
    data["_created"] = time.time() - settings.session_max_hours * 3600 - 1
    redis_client.set(key, json.dumps(data), keepttl=True)
    assert not signed_in(client)
    assert redis_client.get(key) is None


def test_end_sessions_for_ends_every_session_of_the_person(app, client, auth, roster, redis_client):
    from tests.conftest import AuthActions
    ada = roster.person("ada.lovelace")
    roster.person("grace.hopper")
    laptop, tablet, other = client, app.test_client(), app.test_client()
    AuthActions(laptop).login()
    AuthActions(tablet).login()
    AuthActions(other).login(username="grace.hopper")
    assert signed_in(laptop) and signed_in(tablet)

    assert end_sessions_for(redis_client, ada.id) == 2
    assert not signed_in(laptop)
    assert not signed_in(tablet)
    assert signed_in(other)
    assert redis_client.exists(PERSON_INDEX + str(ada.id)) == 0


def test_set_password_command_ends_sessions_and_the_new_password_works(app, client, auth, roster,
                                                                      runner):
    from tests.conftest import AuthActions
    roster.person("ada.lovelace")
    tablet = app.test_client()
    auth.login()
    AuthActions(tablet).login()

    result = runner.invoke(args=["users", "set-password", "Ada.Lovelace"], input="a brand new secret\n")
    assert result.exit_code == 0, result.output
    assert "password set for ada.lovelace" in result.output
    assert not signed_in(client) and not signed_in(tablet)

    assert auth.login().status_code == 401
    assert auth.login(password="a brand new secret").status_code == 302
    from sqlalchemy import select

    from portal.db import db
    from portal.models import Event
    [event] = db.session.scalars(select(Event).where(Event.kind == "password_set"))
    assert event.actor_id is None and "a brand new secret" not in str(event.data)


@pytest.mark.parametrize("args, stdin, reason", [
    (["users", "set-password", "nobody.here"], "long enough secret\n", "no user called"),
    (["users", "set-password", "ada.lovelace"], "short\n", "at least 8 characters"),
    (["users", "set-password", "ada.lovelace"], "", "at least 8 characters"),
    # No one could type these at the sign-in page (found by review on the teacher's page).
    (["users", "set-password", "ada.lovelace"], "\u200b" * 8 + "\n", "no line breaks, tabs or invisible"),
    (["users", "set-password", "ada.lovelace"], "pass\tword1\n", "no line breaks, tabs or invisible"),
])
def test_set_password_command_refuses_bad_input_in_one_line(client, auth, roster, runner, args,
                                                            stdin, reason):
    roster.person("ada.lovelace")
    auth.login()
    result = runner.invoke(args=args, input=stdin)
    assert result.exit_code != 0
    assert len(result.output.strip().splitlines()) == 1
    assert reason in result.output
    assert signed_in(client)  # nothing changed
    from sqlalchemy import func, select

    from portal.db import db
    from portal.models import Event
    assert db.session.scalar(select(func.count()).select_from(Event)
                             .where(Event.kind == "password_set")) == 0


def test_session_ended_during_a_request_stays_ended(settings, roster, redis_server):
    # A request that was already running when the person's sessions were ended (a password
    # reset elsewhere) must not write its session back when it finishes.
    app = create_app({"SETTINGS": settings})
    bp = Blueprint("race", __name__)

    @bp.route("/race")
    def race():
        end_sessions_for(app.extensions["redis"], int(session["_user_id"]))
        session["touched"] = True
        return "done"

    app.register_blueprint(bp)
    from tests.conftest import AuthActions
    client = isolated_client(app)
    roster.person("ada.lovelace")
    AuthActions(client).login()
    assert client.get("/race").get_data(as_text=True) == "done"
    assert app.extensions["redis"].get(PREFIX + sid_of(client)) is None
    assert not signed_in(client)


def test_a_sign_in_saved_just_after_a_password_reset_does_not_outlive_the_old_password(settings, roster,
                                                                                     redis_server):
    # Found by review (threads signing in with the old password while a teacher reset it): a
    # sign-in past its password check when the reset ended the person's sessions saved its new
    # session a moment later, and it stayed signed in with a password that no longer works.
    from flask import request

    from portal.auth.services import set_password
    from portal.db import db
    from portal.models import Person
    from tests.conftest import AuthActions
    app = create_app({"SETTINGS": settings})
    person_id = roster.person("ada.lovelace").id

    @app.after_request
    def reset_meanwhile(response):  # runs after the password check, before the session's save
        if request.path == "/login" and response.status_code == 302:
            # (On this request's database session: SQLite lets one writer at a time, and a
            # second connection here would wait for this request to end.)
            set_password(db.session, app.extensions["redis"], db.session.get(Person, person_id),
                         "a brand new secret")
        return response

    client = isolated_client(app)
    assert AuthActions(client).login().status_code == 302
    assert not signed_in(client)
    tablet = isolated_client(create_app({"SETTINGS": settings}))
    assert AuthActions(tablet).login(password="a brand new secret").status_code == 302
    assert signed_in(tablet)


def test_sessions_that_ended_on_their_own_leave_the_persons_index(app, roster, redis_client):
    # Found by review: an idle time-out leaves the session's id in the person's index, and each
    # sign-in pushed the index's expiry out again: it grew for as long as the person signed in.
    from portal.sessions import PRUNE_ABOVE
    from tests.conftest import AuthActions
    ada = roster.person("ada.lovelace")
    index = PERSON_INDEX + str(ada.id)
    for _ in range(3 * PRUNE_ABOVE):
        client = isolated_client(app)
        AuthActions(client).login()
        redis_client.delete(PREFIX + sid_of(client))   # as its idle time-out would
    still_here = isolated_client(app)
    AuthActions(still_here).login()
    members = {m.decode() for m in redis_client.smembers(index)}
    assert sid_of(still_here) in members and len(members) <= PRUNE_ABOVE + 1
    assert signed_in(still_here)


def test_a_reset_between_the_check_and_the_hash_upgrade_stands(settings, roster, redis_server):
    # Found by review: a first sign-in after the hash parameters changed upgrades the hash; a
    # teacher's reset committed between the check and that upgrade was overwritten with the old
    # password's new hash (the old password kept working, the new one did not), and the session
    # took the reset's time as its own, so it stayed signed in.
    from datetime import datetime, timezone

    from argon2 import PasswordHasher, Type
    from sqlalchemy import event, update

    from portal.auth.passwords import hash_password
    from portal.db import db
    from portal.models import Person
    from tests.conftest import AuthActions
    app = create_app({"SETTINGS": settings})
    ada = roster.person("ada.lovelace", password=None)
    ada.password_hash = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1,
                                       type=Type.ID).hash("correct horse battery")
    db.session.commit()
    person_id = ada.id
    with app.app_context():
        engine = db.engine
    reset = []

    def teacher_resets_first(conn, cursor, statement, *args):
        if statement.startswith("UPDATE person SET password_hash") and not reset:
            reset.append(True)
            # What set_password writes, from another request (its own connection; set_password
            # itself records its audit event on this request's session).
            with engine.begin() as teachers_request:
                teachers_request.execute(update(Person).where(Person.id == person_id).values(
                    password_hash=hash_password("a brand new secret"),
                    password_changed_at=datetime.now(timezone.utc)))
            end_sessions_for(app.extensions["redis"], person_id)

    event.listen(engine, "before_cursor_execute", teacher_resets_first)
    try:
        client = isolated_client(app)
        assert AuthActions(client).login().status_code == 302
    finally:
        event.remove(engine, "before_cursor_execute", teacher_resets_first)
    assert reset
    assert not signed_in(client)
    tablet = isolated_client(app)
    assert AuthActions(tablet).login().status_code == 401                       # the old one
    assert AuthActions(tablet).login(password="a brand new secret").status_code == 302
