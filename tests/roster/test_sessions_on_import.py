"""People an import removes are signed out at once; without Redis such an import is refused."""
from __future__ import annotations

import socket

import pytest
import redis
from sqlalchemy import select

from portal.db import db
from portal.models import Person
from portal.roster import RosterError, import_roster
from portal.sessions import PERSON_INDEX, PREFIX
from tests.factories import password_hash
from tests.roster.conftest import _enrollment, _user, snapshot


def _reimport(app, bundles, roster_rows, redis_client):
    # Each in an app context of its own, as the CLI runs it: the requests then get theirs (a
    # shared one would keep the signed-in person cached in g from one request to the next).
    with app.app_context():
        return import_roster(db.session, bundles.write(roster_rows), redis_client=redis_client)


def _give_password(app, username, password="correct horse battery") -> int:
    with app.app_context():
        person = db.session.scalar(select(Person).where(Person.username == username))
        person.password_hash = password_hash(password)
        db.session.commit()
        return person.id


def _without_user(roster_rows, sid):
    roster_rows["users"] = [u for u in roster_rows["users"] if u["sourcedId"] != sid]
    roster_rows["enrollments"] = [e for e in roster_rows["enrollments"]
                                  if e["userSourcedId"] != sid]


def _sent_to_sign_in(client) -> bool:
    page = client.get("/")
    return page.status_code == 302 and page.headers["Location"].startswith("/login")


def test_removed_student_is_signed_out(app, redis_client, client, auth, bundles, roster_rows):
    _reimport(app, bundles, roster_rows, redis_client)
    ada_id = _give_password(app, "ada.lovelace")
    auth.login()
    assert "Hi, Ada!" in client.get("/").get_data(as_text=True)
    sid = redis_client.smembers(PERSON_INDEX + str(ada_id)).pop().decode()

    roster_rows["users"][0]["status"] = "tobedeleted"
    roster_rows["enrollments"] = [e for e in roster_rows["enrollments"] if e["userSourcedId"] != "u1"]
    summary = _reimport(app, bundles, roster_rows, redis_client)

    assert summary["people"].removed == 1
    assert not redis_client.exists(PREFIX + sid, PERSON_INDEX + str(ada_id))
    assert _sent_to_sign_in(client)


def test_new_person_never_inherits_a_removed_persons_session(app, redis_client, client, auth,
                                                             bundles, roster_rows):
    # On SQLite the new person may take the removed one's id: the old session must not load them.
    roster_rows["users"].append(_user("u9", "yan.li", "Yan", "Li"))
    roster_rows["enrollments"].append(_enrollment("e9", "k1", "u9"))
    _reimport(app, bundles, roster_rows, redis_client)
    _give_password(app, "yan.li")
    auth.login(username="yan.li")
    assert "Hi, Yan!" in client.get("/").get_data(as_text=True)

    _without_user(roster_rows, "u9")
    roster_rows["users"].append(_user("u10", "zed.adams", "Zed", "Adams"))
    roster_rows["enrollments"].append(_enrollment("e10", "k1", "u10"))
    _reimport(app, bundles, roster_rows, redis_client)

    assert _sent_to_sign_in(client)


@pytest.fixture
def unreachable_redis():
    """A real client for a port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
    yield client
    client.close()


@pytest.mark.parametrize("change", ["removed", "disabled", "no longer a student"])
def test_import_that_signs_people_out_is_refused_without_redis(
        db_session, redis_client, unreachable_redis, bundles, roster_rows, change):
    import_roster(db_session, bundles.write(roster_rows), redis_client=redis_client)
    before = snapshot(db_session)
    if change == "removed":
        _without_user(roster_rows, "u1")
    elif change == "disabled":
        roster_rows["users"][0]["enabledUser"] = "false"
    else:
        roster_rows["users"][0]["role"] = "teacher"

    with pytest.raises(RosterError) as caught:
        import_roster(db_session, bundles.write(roster_rows), redis_client=unreachable_redis)

    assert caught.value.problems == [
        "Redis (the session store) cannot be reached, and this import removes, disables or moves people "
        "whose sessions must end at once; start Redis and import again"]
    assert snapshot(db_session) == before


def test_import_that_signs_nobody_out_needs_no_redis(db_session, redis_client, unreachable_redis,
                                                     bundles, roster_rows):
    import_roster(db_session, bundles.write(roster_rows), redis_client=redis_client)
    roster_rows["users"][2]["familyName"] = "Rivera-Cruz"  # a teacher's new name
    roster_rows["users"].append(_user("u9", "yan.li", "Yan", "Li"))

    summary = import_roster(db_session, bundles.write(roster_rows), redis_client=unreachable_redis)

    assert (summary["people"].created, summary["people"].updated) == (1, 1)
