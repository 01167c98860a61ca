"""A student the roster knows by one name signs in to a SAML app (python3-saml) and an OpenID app
(Authlib): neither receives an empty name, nor the invisible character a district typed in for
the missing one."""
from __future__ import annotations

import copy

import pytest
from sqlalchemy import select

from portal.auth.services import set_password
from portal.db import db
from portal.models import Person, School
from portal.roster import import_roster
from tests.roster.conftest import ROSTER, Bundles
from tests.sso.conftest import PeerSP, register_and_grant, saml_response_of
from tests.sso.test_oidc_flow import run_code_flow, verified_id_token
from tests.sso.test_oidc_support import PASSWORD, OidcWorld, register_oidc_app

NAMES = ["given_name", "family_name", "family_name_initial", "display_name", "username"]
PROTOCOL = {"iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "at_hash"}


@pytest.fixture(params=[("Madonna", "\u200b"), ("", "Suharto")], ids=["given-only", "family-only"])
def one_name(request, db_session, tmp_path, redis_client):
    """Ada of the small roster, imported with one name: a given name and a zero-width space for
    the family name (what a district typed to get past the import), or a family name only."""
    given, family = request.param
    roster = copy.deepcopy(ROSTER)
    roster["users"][0].update(username="ada.lovelace", givenName=given, familyName=family)
    import_roster(db_session, Bundles(tmp_path).write(roster))
    student = db_session.scalar(select(Person).where(Person.sourced_id == "u1"))
    set_password(db_session, redis_client, student, PASSWORD)
    school = db_session.scalar(select(School).where(School.sourced_id == "s1"))
    return school, student, given or family


def test_a_saml_app_receives_no_empty_name(client, auth, one_name, saml_sp_keys):
    school, _, name = one_name
    registered = register_and_grant(db.session, school=school, sp_cert=saml_sp_keys.cert_pem)
    from portal.admin.services import release_fields
    release_fields(db.session, registered.slug, NAMES)
    peer = PeerSP(client.get("/saml/metadata").get_data(as_text=True), saml_sp_keys)
    assert auth.login(password=PASSWORD).status_code == 302

    result = peer.consume(saml_response_of(client.get(f"/launch/{registered.slug}")).fields["SAMLResponse"])

    assert result.is_authenticated(), result.get_last_error_reason()
    attributes = result.get_attributes()
    assert attributes.pop("subject")
    if name == "Madonna":
        assert attributes == {"given_name": ["Madonna"], "display_name": ["Madonna"],
                              "username": ["ada.lovelace"]}
    else:
        assert attributes == {"family_name": ["Suharto"], "family_name_initial": ["S"],
                              "display_name": ["Suharto"], "username": ["ada.lovelace"]}


def test_an_openid_app_receives_no_empty_name(live_server, one_name):
    school, student, name = one_name
    registered, secret = register_oidc_app(db.session, school=school, release=NAMES)
    world = OidcWorld(school, None, student, registered, registered.client_id, secret)

    config, oauth, token, nonce = run_code_flow(live_server, world, scope="openid profile")

    claims = verified_id_token(token["id_token"], config, world.client_id, nonce)
    userinfo = oauth.get(config["userinfo_endpoint"]).json()
    names = {"sub": claims["sub"], "name": name, "preferred_username": "ada.lovelace"}
    names.update({"given_name": name} if name == "Madonna" else
                 {"family_name": name, "family_name_initial": "S"})
    assert {k: v for k, v in claims.items() if k not in PROTOCOL} == names
    assert userinfo == names
