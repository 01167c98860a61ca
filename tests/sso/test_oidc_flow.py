"""A client we did not write (Authlib's requests client) completes the code flow with PKCE
against the portal served over real HTTP, and verifies the ID token with joserfc against the
JWKS it fetched."""
from __future__ import annotations

import secrets
import time
from dataclasses import replace

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jws, jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from portal.sso.oidc.keys import JWKS_MAX_AGE
from tests.sso.test_oidc_support import (  # noqa: F401  (fixtures)
    REDIRECT, Browser, live_portal, oidc_world, query_of,
)

EXPECTED_SCOPE = "openid profile roster"


@pytest.fixture
def settings(base_settings, tmp_path):
    """A key folder of this test's own: rotating here leaves other tests' keys alone."""
    return replace(base_settings, oidc_keys_dir=str(tmp_path / "oidc_keys"))


def discover(base: str) -> dict:
    response = requests.get(f"{base}/.well-known/openid-configuration", timeout=5)
    assert response.status_code == 200
    return response.json()


def verified_id_token(id_token: str, config: dict, client_id: str, nonce: str) -> dict:
    """Verify signature (kid from the JWKS fetched over HTTP), iss, aud, exp and nonce."""
    keys = requests.get(config["jwks_uri"], timeout=5).json()
    header = jws.extract_compact(id_token.encode()).protected
    assert header["alg"] == "RS256"
    assert header["kid"] in {k["kid"] for k in keys["keys"]}
    token = jwt.decode(id_token, KeySet.import_key_set(keys), algorithms=["RS256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": config["issuer"]},
        aud={"essential": True, "value": client_id},
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
        nonce={"essential": True, "value": nonce},
    ).validate(token.claims)
    return token.claims


def app_client(world, config, **kwargs) -> OAuth2Session:
    return OAuth2Session(world.client_id, world.client_secret, scope=kwargs.pop("scope", EXPECTED_SCOPE),
                         redirect_uri=REDIRECT, code_challenge_method="S256", **kwargs)


def run_code_flow(live_portal, world, **client_kwargs):
    config = discover(live_portal)
    oauth = app_client(world, config, **client_kwargs)
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, state = oauth.create_authorization_url(config["authorization_endpoint"], code_verifier=verifier,
                                                nonce=nonce)
    callback = Browser(live_portal).follow(url)
    assert query_of(callback)["iss"] == config["issuer"]   # RFC 9207, as discovery says
    token = oauth.fetch_token(config["token_endpoint"], authorization_response=callback,
                              code_verifier=verifier, state=state)
    return config, oauth, token, nonce


def test_discovery_is_valid_and_honest(live_portal):
    config = discover(live_portal)
    OpenIDProviderMetadata(config).validate()
    assert config["issuer"] == live_portal
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["response_types_supported"] == ["code"]
    assert config["token_endpoint_auth_methods_supported"] == ["client_secret_basic", "client_secret_post"]
    assert config["end_session_endpoint"] == f"{live_portal}/oidc/logout"
    assert config["authorization_response_iss_parameter_supported"] is True
    jwks = requests.get(config["jwks_uri"], timeout=5)
    keys = jwks.json()["keys"]
    assert keys and all(k["kid"] and k["alg"] == "RS256" and "d" not in k for k in keys)
    # Apps may keep the key set this long (a rotated key is published for twice that first).
    assert jwks.headers["Cache-Control"] == f"public, max-age={JWKS_MAX_AGE}"


def test_client_library_completes_code_flow_with_pkce(live_portal, oidc_world):
    before = int(time.time())
    config, oauth, token, nonce = run_code_flow(live_portal, oidc_world)

    assert token["token_type"].lower() == "bearer" and "refresh_token" not in token
    assert token["scope"] == EXPECTED_SCOPE
    claims = verified_id_token(token["id_token"], config, oidc_world.client_id, nonce)
    # No auth_time: the app did not ask when the student signed in (test_oidc_claims_join).
    assert "auth_time" not in claims and claims["iat"] >= before - 1
    assert claims["amr"] == ["pwd"]

    released = {"sub": claims["sub"], "given_name": "Ada", "name": "Ada Lovelace", "grade": ["02"],
                "school": ["Maple Elementary"], "sections": ["sec-4"]}
    userinfo = oauth.get(config["userinfo_endpoint"])
    assert userinfo.status_code == 200
    assert userinfo.json() == released
    protocol = {"iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "at_hash"}
    assert {k: v for k, v in claims.items() if k not in protocol} == released
    # userinfo answers POST as well as GET
    assert oauth.post(config["userinfo_endpoint"]).json() == released


def test_client_secret_post_works_and_launch_is_audited(live_portal, oidc_world):
    from portal.db import db
    from portal.models import Event
    config, oauth, token, nonce = run_code_flow(live_portal, oidc_world,
                                                token_endpoint_auth_method="client_secret_post")
    verified_id_token(token["id_token"], config, oidc_world.client_id, nonce)

    db.session.rollback()  # see what the server thread committed
    events = list(db.session.scalars(select(Event).where(Event.kind == "launch")))
    assert len(events) == 1
    assert events[0].person_id == oidc_world.student.id and events[0].app_id == oidc_world.app.id
    fields = ["subject", "given_name", "display_name", "grade", "school", "sections"]
    assert events[0].data == {"protocol": "oidc", "fields": fields}


def test_a_rotated_key_signs_after_it_is_published_and_old_tokens_still_verify(live_portal, oidc_world,
                                                                              runner):
    config, _, first, first_nonce = run_code_flow(live_portal, oidc_world)
    signed_by = jws.extract_compact(first["id_token"].encode()).protected["kid"]
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    published = result.output.split("published: ")[1].split()[0]
    # The new key is in the JWKS at once, but tokens go on being signed with the old one.
    assert published in {k["kid"] for k in requests.get(config["jwks_uri"], timeout=5).json()["keys"]}
    config, _, second, nonce = run_code_flow(live_portal, oidc_world)
    assert jws.extract_compact(second["id_token"].encode()).protected["kid"] == signed_by

    result = runner.invoke(args=["keys", "rotate", "--now"])
    assert result.exit_code == 0, result.output
    newest = result.output.split("signing with ")[1].split()[0]
    config, _, third, third_nonce = run_code_flow(live_portal, oidc_world)
    assert jws.extract_compact(third["id_token"].encode()).protected["kid"] == newest
    for token, n in ((first, first_nonce), (second, nonce), (third, third_nonce)):
        verified_id_token(token["id_token"], config, oidc_world.client_id, n)
    assert len(requests.get(config["jwks_uri"], timeout=5).json()["keys"]) == 3


def test_tile_launch_starts_third_party_login_that_completes(live_portal, oidc_world):
    """/launch/<slug> sends the browser to the app's login URI; the app then runs a code flow."""
    browser = Browser(live_portal)
    browser.sign_in()
    launch = browser.http.get(f"{live_portal}/launch/{oidc_world.app.slug}", allow_redirects=False)
    assert launch.status_code == 302
    initiation = query_of(launch.headers["Location"])
    assert launch.headers["Location"].startswith("https://learn.test/oidc/login?")
    assert initiation["iss"] == live_portal
    assert initiation["target_link_uri"] == "https://learn.test/"

    config = discover(initiation["iss"])
    oauth = app_client(oidc_world, config)
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, state = oauth.create_authorization_url(config["authorization_endpoint"], code_verifier=verifier,
                                                nonce=nonce, login_hint=initiation["login_hint"])
    callback = browser.follow(url)  # already signed in: straight back with a code
    token = oauth.fetch_token(config["token_endpoint"], authorization_response=callback,
                              code_verifier=verifier, state=state)
    claims = verified_id_token(token["id_token"], config, oidc_world.client_id, nonce)
    assert claims["sub"] == initiation["login_hint"]


@pytest.mark.parametrize("scope, expected", [
    ("openid", {"sub"}),
    ("openid email", {"sub"}),  # email is not released to this app
    ("openid profile", {"sub", "given_name", "name"}),
])
def test_scopes_only_narrow_what_is_released(live_portal, oidc_world, scope, expected):
    config, oauth, token, nonce = run_code_flow(live_portal, oidc_world, scope=scope)
    assert set(oauth.get(config["userinfo_endpoint"]).json()) == expected
    claims = verified_id_token(token["id_token"], config, oidc_world.client_id, nonce)
    assert expected <= set(claims) and not ({"grade", "school", "email"} & set(claims)) - expected
