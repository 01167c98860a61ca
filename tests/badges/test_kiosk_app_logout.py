"""On a shared classroom device, the next child's scan ends the last child's portal session, and
with it their sessions at the apps that listen (OpenID Connect Back-Channel Logout): the next
child who opens the app's tab does not find the last child's work."""
from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import KeySet

from portal.db import db
from tests.badges.conftest import issue
from tests.sso.test_oidc_backchannel import endpoint, logout_tokens  # noqa: F401  (fixture)
from tests.sso.test_oidc_support import OidcWorld, exchange, get_code, register_oidc_app


def test_the_next_scan_signs_the_last_child_out_of_the_apps_too(app, redis_client, world, kiosk,
                                                                 endpoint):
    registered, secret = register_oidc_app(db.session, "Reading Garden", school=world.school,
                                           backchannel_logout_uri=endpoint.url)
    reading = OidcWorld(world.school, world.section, world.student, registered,
                        registered.client_id, secret)
    landed = kiosk.sign_in(issue(redis_client, world.student))
    assert landed.headers["Location"].endswith("/badges/home")
    code, verifier, _ = get_code(kiosk.browser, reading)      # Ada opens the reading app
    id_token = exchange(kiosk.api, reading, code, verifier).json["id_token"]
    assert endpoint.posts == []
    kiosk.sign_in(issue(redis_client, world.classmate))       # Alan scans next
    [(claims, header)] = logout_tokens(kiosk.api, endpoint)
    ada = jwt.decode(id_token, KeySet.import_key_set(kiosk.api.get("/oidc/jwks").json)).claims
    assert header["typ"] == "logout+jwt"
    assert claims["sub"] == ada["sub"] and claims["sid"] == ada["sid"] and ada["amr"] == ["badge"]

