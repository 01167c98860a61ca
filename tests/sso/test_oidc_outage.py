"""Redis away during an app's server call: the token and userinfo endpoints answer OAuth's JSON
"temporarily_unavailable" (503, Retry-After), not the people's page; a person's authorize request
still gets the plain page."""
from __future__ import annotations

from tests.auth.helpers import isolated_client
from tests.conftest import AuthActions
from tests.sso.test_oidc_support import (  # noqa: F401  (fixtures)
    authorize_url, exchange, get_code, oidc_world, pkce_pair,
)
from tests.test_errors import assert_unavailable, outage_app, own_redis  # noqa: F401  (fixtures)


def test_app_server_calls_read_temporarily_unavailable(outage_app, own_redis, oidc_world):
    student, app_server = isolated_client(outage_app), isolated_client(outage_app)
    AuthActions(student).login()
    code, verifier, _ = get_code(student, oidc_world)
    token = exchange(app_server, oidc_world, code, verifier).json["access_token"]
    code, verifier, _ = get_code(student, oidc_world)

    own_redis.stop()
    answers = [exchange(app_server, oidc_world, code, verifier),
               app_server.get("/oidc/userinfo", headers={"Authorization": f"Bearer {token}"})]
    for answer in answers:
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "60"
        assert answer.json["error"] == "temporarily_unavailable"
        assert answer.headers["Cache-Control"] == "no-store"
    assert_unavailable(student.get(authorize_url(oidc_world, challenge=pkce_pair()[1])))


def test_a_userinfo_release_the_database_could_not_record_is_recorded_at_the_next_read(
        client, auth, oidc_world, monkeypatch):
    from sqlalchemy import select

    from portal.db import db
    from portal.models import Event
    from tests.auth.helpers import database_locked
    auth.login()
    code, verifier, _ = get_code(client, oidc_world)
    token = exchange(client, oidc_world, code, verifier).json["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    with database_locked(monkeypatch):
        refused = client.get("/oidc/userinfo", headers=bearer)
    assert refused.status_code == 503 and "sub" not in (refused.json or {})
    # The failed read released nothing and recorded nothing: the next one is the first release,
    # and is recorded (it was counted as a repeat of the failed one, and went unrecorded).
    released = client.get("/oidc/userinfo", headers=bearer)
    assert released.status_code == 200 and released.json["sub"]
    db.session.rollback()
    assert len(db.session.scalars(select(Event).where(Event.kind == "userinfo")).all()) == 1
