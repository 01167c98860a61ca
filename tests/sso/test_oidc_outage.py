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
