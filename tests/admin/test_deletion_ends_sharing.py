"""A deletion request ends what the app was given before it (portal.admin.deletions): an OpenID
app's access tokens and codes for the student stop working and, if it listens, it is told to end
their sessions; it is not kept from launching again (the student may still be granted it), but
a release after the request is shown plainly on the request's page, the person's page and by
`portal deletions list`, with the way to stop the sharing (an opt-out). Driven through the real
token endpoint, userinfo, a real back-channel logout receiver and real Redis."""
from __future__ import annotations

import re
import socket
from datetime import datetime, timezone

import pytest
import redis

from portal.db import db
from portal.models import DeletionRequest, Event, Role
from tests.admin.helpers import cli
from tests.admin.test_shared_pages import _client, _text, shared  # noqa: F401  (the fixture)
from tests.sso.test_oidc_backchannel import endpoint, logout_tokens  # noqa: F401  (a fixture)
from tests.sso.test_oidc_support import OidcWorld, exchange, get_code, register_oidc_app


@pytest.fixture
def math(app, roster, endpoint) -> OidcWorld:
    """An OpenID app that listens for logouts, granted to Ada's school; Ada; and an admin."""
    school = roster.school("sch-maple", name="Maple Elementary")
    section = roster.section(school, "sec-4")
    student = roster.person("ada.lovelace", schools=[school], sections=[section], grades="02")
    student.email = "ada@example.org"
    roster.person("dee.admin", role=Role.district_admin, given="Dee", family="Admin")
    registered, secret = register_oidc_app(db.session, "Math Garden", school=school,
                                           release=["given_name", "email"], backchannel_logout_uri=endpoint.url)
    db.session.commit()
    return OidcWorld(school, section, student, registered, registered.client_id, secret)


def _launch(browser, world) -> dict:
    code, verifier, _ = get_code(browser, world, scope="openid profile email")
    answer = exchange(browser, world, code, verifier)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.json


def _userinfo(browser, token: str) -> int:
    return browser.get("/oidc/userinfo", headers={"Authorization": f"Bearer {token}"}).status_code


def _post(admin, page: str, action: str, data: dict):
    token = re.search(r'name="csrf_token" value="([^"]+)"', admin.get(page).get_data(as_text=True)).group(1)
    return admin.post(action, data={**data, "csrf_token": token})


def _ask(admin, world):
    return _post(admin, f"/admin/people?username={world.student.username}",
                 f"/admin/people/{world.student.id}/deletions", {"app": world.app.slug})


def _today(app, spelled: str) -> str:
    from portal.local_time import local
    with app.app_context():
        return local(datetime.now(timezone.utc)).strftime(spelled)


def _kinds(app, world) -> list[str]:
    with app.app_context():
        return [e.kind for e in db.session.query(Event).filter(Event.app_id == world.app.id).order_by(Event.id)
                if e.kind in ("launch", "userinfo", "deletion_requested", "deletion_confirmed")]


def test_asking_ends_the_tokens_and_codes_the_app_was_given_before(app, math, endpoint):
    admin, ada = _client(app, "dee.admin"), _client(app, "ada.lovelace")
    token = _launch(ada, math)
    assert _userinfo(ada, token["access_token"]) == 200
    early_code, early_verifier, _ = get_code(ada, math, scope="openid profile email")   # not exchanged yet

    asked = _ask(admin, math)
    assert asked.status_code == 303 and re.search(r"/admin/deletions/\d+$", asked.headers["Location"])
    page = _text(admin.get(asked.headers["Location"]))
    assert "Request made" in page and "Math Garden's sign-ins for Ada Lovelace have ended" in page

    # Nothing it was given before reads Ada's data again: the token, and the code not yet exchanged.
    assert _userinfo(ada, token["access_token"]) == 401
    late = exchange(ada, math, early_code, early_verifier)
    assert late.status_code == 400 and late.json["error"] == "invalid_grant" and "id_token" not in late.json
    # The app is told to end Ada's session there (the sid of the launch); the portal keeps hers.
    [(claims, _)] = logout_tokens(ada, endpoint)
    assert claims["sid"] == _claims_sid(ada, token)
    assert ada.get("/").status_code == 200
    assert _kinds(app, math) == ["launch", "userinfo", "deletion_requested"]

    # Not a block: Ada is still granted the app, and a new launch works (and is recorded).
    again = _launch(ada, math)
    assert _userinfo(ada, again["access_token"]) == 200
    assert _kinds(app, math) == ["launch", "userinfo", "deletion_requested", "launch", "userinfo"]


def _claims_sid(browser, token: dict) -> str:
    from tests.sso.test_oidc_backchannel import _claims
    return _claims(browser, token["id_token"])["sid"]


def test_a_release_after_the_request_is_shown_with_the_way_to_stop_it(app, math, endpoint):
    admin, ada = _client(app, "dee.admin"), _client(app, "ada.lovelace")
    _launch(ada, math)
    location = _ask(admin, math).headers["Location"]
    request_page = _text(admin.get(location))
    assert "received data about this student again" not in request_page
    assert "Opt Ada Lovelace out of Math Garden" in request_page          # offered, for a family that wants it
    person_page = _text(admin.get("/admin/people?username=ada.lovelace"))
    assert "again on" not in person_page and "Bring the request to Math Garden up to date" not in person_page
    slug = math.app.slug
    assert "received again" not in _text(admin.get("/admin/deletions"))
    assert "again on" not in _text(admin.get(f"/admin/apps/{slug}"))

    _launch(ada, math)                                                     # Ada opens it again
    today = _today(app, "%b %-d, %Y")
    request_page = _text(admin.get(location))
    assert (f"Math Garden received data about this student again on {today}, after this deletion request. "
            "The letter below does not cover it yet.") in request_page
    assert "Bring the letter up to date" in request_page
    person_page = _text(admin.get("/admin/people?username=ada.lovelace"))
    assert (f"Math Garden received data about Ada Lovelace again on {today}, after the deletion request. "
            "To stop it, opt them out of Math Garden") in person_page
    assert "Bring the request to Math Garden up to date" in person_page
    # The lists say so too: every request, and the app's own page.
    assert f"waiting for the vendor received again on {today}, after the request" in _text(admin.get("/admin/deletions"))
    assert (f"waiting for the vendor ; Math Garden received data about them again on {today}, after the request"
            in _text(admin.get(f"/admin/apps/{slug}")))

    # Brought up to date: the letter covers it, and the app's new token ends as the first did.
    token = _launch(ada, math)["access_token"]
    assert _ask(admin, math).headers["Location"] == location
    with app.app_context():                # the log says who asked again, and for what
        [again] = db.session.query(Event).filter(Event.kind == "deletion_asked_again").all()
        assert (again.actor_name, again.person_id, again.app_id) == ("Dee Admin (dee.admin)", math.student.id, math.app.id)
        assert again.data["request"] == int(location.rsplit("/", 1)[1])
    assert "received data about this student again" not in _text(admin.get(location))
    assert _userinfo(ada, token) == 401
    with app.app_context():
        assert db.session.query(DeletionRequest).count() == 1

    # Confirmed by the vendor, then received again: the confirmation does not cover it, and says so.
    done = _post(admin, location, location + "/done", {"note": "ticket 7"})
    assert "Recorded: Math Garden has deleted what it received." in _text(admin.get(done.headers["Location"]))
    _launch(ada, math)
    request_page = _text(admin.get(location))
    assert "again on" in request_page and "The vendor's confirmation does not cover it." in request_page
    assert "Ask Math Garden to delete again" in request_page
    assert "Ask Math Garden to delete again" in _text(admin.get("/admin/people?username=ada.lovelace"))

    # The opt-out offered on the request's page stops the sharing.
    answer = _post(admin, location, f"/admin/people/{math.student.id}/opt-out", {"app": math.app.slug})
    assert "Ada Lovelace is opted out of Math Garden" in _text(admin.get(answer.headers["Location"]))
    assert "Ada Lovelace is opted out of Math Garden: it does not open for them" in _text(admin.get(location))


def test_a_confirmation_recorded_after_a_later_release_says_what_it_does_not_cover(app, math):
    admin, ada = _client(app, "dee.admin"), _client(app, "ada.lovelace")
    _launch(ada, math)
    location = _ask(admin, math).headers["Location"]
    _launch(ada, math)
    done = _post(admin, location, location + "/done", {"note": ""})
    text = _text(admin.get(done.headers["Location"]))
    assert "Recorded: Math Garden has deleted what the letter covers. It received data about this student " \
           "again after the request was made, which this does not cover" in text
    assert _kinds(app, math) == ["launch", "deletion_requested", "launch", "deletion_confirmed"]


def test_a_saml_launch_after_the_request_is_shown_too(app, shared):
    admin, ada = _client(app, "dee.admin"), _client(app, "ada.lovelace")
    saml = shared["saml"]
    location = _post(admin, "/admin/people?username=ada.lovelace", f"/admin/people/{shared['ada'].id}/deletions",
                     {"app": saml.slug}).headers["Location"]
    page = _text(admin.get(location))
    assert "sign-ins for" not in page and "again on" not in page    # a SAML app holds nothing to end
    assert ada.get(f"/launch/{saml.slug}").status_code == 200
    assert "Reading Garden received data about this student again on" in _text(admin.get(location))
    assert "Reading Garden received data about Ada Lovelace again on" in _text(
        admin.get("/admin/people?username=ada.lovelace"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nothing_is_asked_while_redis_cannot_be_reached(app, math):
    from portal.admin.deletions import ask_deletion
    from portal.admin.services import AdminError
    ada = _client(app, "ada.lovelace")
    token = _launch(ada, math)["access_token"]
    away = redis.Redis(host="127.0.0.1", port=_closed_port(), socket_connect_timeout=1)
    with app.app_context():
        with pytest.raises(AdminError, match="nothing was asked; try again in a minute"):
            ask_deletion(db.session, away, db.session.get(type(math.student), math.student.id),
                         db.session.get(type(math.app), math.app.id), actor=None,
                         pairwise_key=app.config["SETTINGS"].pairwise_key, now=datetime.now(timezone.utc))
        assert db.session.query(DeletionRequest).count() == 0
    assert _kinds(app, math) == ["launch"] and _userinfo(ada, token) == 200


def test_the_command_line_ends_sharing_and_lists_what_came_after(app, math, runner):
    ada = _client(app, "ada.lovelace")
    token = _launch(ada, math)["access_token"]
    out = cli(runner, "deletions", "ask", "ada.lovelace", "Math Garden")
    assert "Math Garden's sign-ins for ada.lovelace have ended" in out
    assert _userinfo(ada, token) == 401
    assert "again" not in cli(runner, "deletions", "list")
    _launch(ada, math)
    today = _today(app, "%Y-%m-%d")
    assert (f"received data about this student again on {today}, after this request: the letter does not "
            "cover it yet") in cli(runner, "deletions", "list", "--open")
    request_id = re.search(r"request (\d+)", out).group(1)
    assert "which this does not cover" in cli(runner, "deletions", "done", request_id)
    assert "the vendor's confirmation does not cover it" in cli(runner, "deletions", "list")

