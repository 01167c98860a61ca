"""Userinfo with the access token in a form-encoded POST body (RFC 6750 2.2), as pyoidc's
do_user_info_request() sends it by default; and the requests that send it some other way, or two
ways at once, answered as RFC 6750 3 says."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import requests
from sqlalchemy import select

from portal.db import db
from portal.models import Event
from tests.sso.test_oidc_flow import run_code_flow
from tests.sso.test_oidc_support import (  # noqa: F401  (fixtures)
    exchange, get_code, live_portal, oidc_world,
)

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def token(client, auth, oidc_world) -> str:
    auth.login()
    code, verifier, _ = get_code(client, oidc_world)
    return exchange(client, oidc_world, code, verifier).json["access_token"]


def userinfo_reads():
    return [(e.person_id, e.app_id, e.data) for e in
            db.session.scalars(select(Event).where(Event.kind == "userinfo").order_by(Event.id))]


def assert_challenge(response, error: str, status: int):
    """RFC 6750 3: the status, the error in the JSON body and in the WWW-Authenticate challenge."""
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.is_json and response.json["error"] == error
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and f'error="{error}"' in challenge
    assert response.headers["Cache-Control"] == "no-store"


def assert_bare_challenge(response):
    """RFC 6750 3.1: no credentials this endpoint reads: the challenge, no error code."""
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="userinfo"'
    assert "error" not in response.get_data(as_text=True)


def test_a_client_library_reads_userinfo_with_the_token_in_the_form_body(live_portal, oidc_world):
    config, oauth, _, _ = run_code_flow(live_portal, oidc_world, token_placement="body")
    assert "Authorization" not in oauth.headers
    answer = oauth.post(config["userinfo_endpoint"], headers=FORM)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json() == oauth.get(config["userinfo_endpoint"], headers=bearer(oauth.token["access_token"])
                                      ).json()
    assert answer.json()["given_name"] == "Ada" and answer.headers["Cache-Control"] == "no-store"
    # pyoidc's request as it sends it: the token alone in the body, and no Authorization header.
    plain = requests.post(config["userinfo_endpoint"], data={"access_token": oauth.token["access_token"]},
                          timeout=5)
    assert plain.status_code == 200 and plain.json() == answer.json()


def test_the_body_token_is_checked_and_recorded_as_the_header_token_is(client, oidc_world, token):
    from portal.admin.optouts import opt_out
    from portal.admin.services import release_fields
    by_header = client.get("/oidc/userinfo", headers=bearer(token))
    by_body = client.post("/oidc/userinfo", data={"access_token": token})
    assert by_body.status_code == 200 and by_body.json == by_header.json
    fields = ["subject", "given_name", "display_name", "grade", "school", "sections"]
    released = (oidc_world.student.id, oidc_world.app.id, {"protocol": "oidc", "fields": fields})
    assert userinfo_reads() == [released]   # the same token and fields, whichever way: one record

    release_fields(db.session, oidc_world.app.slug, ["given_name"])   # releasing less reaches it at once
    assert client.post("/oidc/userinfo", data={"access_token": token}).json == {
        "sub": by_header.json["sub"], "given_name": "Ada"}
    less = (oidc_world.student.id, oidc_world.app.id, {"protocol": "oidc", "fields": ["subject", "given_name"]})
    assert userinfo_reads() == [released, less]

    opt_out(db.session, oidc_world.student, oidc_world.app, actor=None, now=datetime.now(timezone.utc))
    assert_challenge(client.post("/oidc/userinfo", data={"access_token": token}), "invalid_token", 401)
    assert userinfo_reads() == [released, less]   # a refused read records nothing


def test_a_body_token_stops_working_when_the_grant_goes(client, oidc_world, token):
    for grant in list(oidc_world.app.grants):
        db.session.delete(grant)
    db.session.commit()
    assert_challenge(client.post("/oidc/userinfo", data={"access_token": token}), "invalid_token", 401)


@pytest.mark.parametrize("sent", ["nope", "", "x" * 600, "x" * 5000])
def test_a_body_token_that_is_not_a_token_is_invalid_token(client, oidc_world, token, sent):
    assert_challenge(client.post("/oidc/userinfo", data={"access_token": sent}), "invalid_token", 401)


def test_a_token_in_both_the_header_and_the_body_is_invalid_request(client, oidc_world, token):
    # RFC 6750 2: a client must not use more than one way in a request, even with the same token.
    for header in (bearer(token), bearer("nope"), {"Authorization": "Basic eDp5"}, {"Authorization": ""}):
        assert_challenge(client.post("/oidc/userinfo", data={"access_token": token}, headers=header),
                         "invalid_request", 400)
    assert userinfo_reads() == []


def test_a_token_sent_twice_in_the_body_is_invalid_request(client, oidc_world, token):
    answer = client.post("/oidc/userinfo", data="access_token=%s&access_token=%s" % (token, token),
                         headers=FORM)
    assert_challenge(answer, "invalid_request", 400)


def test_a_token_in_the_address_is_never_read(client, oidc_world, token):
    # RFC 6750 2.3 is not supported: the address ends up in logs and histories.
    assert_bare_challenge(client.get("/oidc/userinfo", query_string={"access_token": token}))
    assert_bare_challenge(client.post("/oidc/userinfo", query_string={"access_token": token}))
    assert_bare_challenge(client.post("/oidc/userinfo", query_string={"access_token": token}, data={"x": "1"}))
    # With another way too it is two ways, refused even though the header's token is good.
    assert_challenge(client.get("/oidc/userinfo", query_string={"access_token": token}, headers=bearer(token)),
                     "invalid_request", 400)
    assert_challenge(client.post("/oidc/userinfo", query_string={"access_token": token},
                                 data={"access_token": token}), "invalid_request", 400)
    assert userinfo_reads() == []


def test_a_token_in_a_body_that_is_not_a_form_post_is_not_read(client, oidc_world, token):
    # RFC 6750 2.2: only a form-encoded body of a method whose body means something; not a GET's.
    assert_bare_challenge(client.get("/oidc/userinfo", data={"access_token": token}))
    assert_bare_challenge(client.post("/oidc/userinfo", json={"access_token": token}))
    assert_bare_challenge(client.post("/oidc/userinfo", data=f"access_token={token}",
                                      content_type="text/plain"))
    assert_bare_challenge(client.post("/oidc/userinfo", data={"access_token": token},
                                      content_type="multipart/form-data"))
    assert userinfo_reads() == []
    # A GET's body beside the header is not a second way: the header's token is read.
    assert client.get("/oidc/userinfo", data={"access_token": "nope"}, headers=bearer(token)).status_code == 200


def test_the_header_way_is_unchanged_beside_a_form_body(client, oidc_world, token):
    assert client.post("/oidc/userinfo", headers=bearer(token)).status_code == 200
    assert client.post("/oidc/userinfo", headers=bearer(token), data={"x": "1"}).status_code == 200
    assert client.post("/oidc/userinfo", headers={**bearer(token), **FORM}, data="").status_code == 200
