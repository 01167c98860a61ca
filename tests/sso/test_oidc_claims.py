"""The pure parts of the provider: claim mapping, scopes, amr, ID token claims, sign-in freshness,
client URLs and the discovery document. No Flask, no Redis."""
from __future__ import annotations

import pytest
from authlib.oidc.core.util import create_half_hash
from authlib.oidc.discovery import OpenIDProviderMetadata

from portal.access import FIELDS
from portal.admin.services import AdminError
from portal.sso.oidc.claims import (
    CLAIM_NAMES, SCOPE_FIELDS, SignInState, amr_for, fields_for_scope, id_token_claims,
    id_token_is_for_sign_in, must_sign_in, oidc_claims, parse_max_age,
)
from portal.sso.oidc.clients import check_client_url
from portal.sso.oidc.metadata import provider_metadata

RELEASED = {"subject": "abc", "given_name": "Ada", "family_name": "Lovelace", "display_name": "Ada Lovelace",
            "email": "ada@example.org", "username": "ada.lovelace", "grade": ["02"], "school": ["Maple"],
            "school_id": ["sch1"], "sections": ["sec4"], "role": "student", "student_number": "S1",
            "family_name_initial": "L"}


def test_every_catalogue_field_has_a_claim_name_and_a_scope():
    assert set(CLAIM_NAMES) == set(FIELDS)
    assert set().union(*SCOPE_FIELDS.values()) == set(FIELDS)


def test_claim_names_follow_openid_connect():
    claims = oidc_claims(RELEASED, "openid profile email roster")
    assert claims["sub"] == "abc" and claims["name"] == "Ada Lovelace"
    assert claims["preferred_username"] == "ada.lovelace" and claims["email"] == "ada@example.org"
    assert claims["school_id"] == ["sch1"] and claims["family_name_initial"] == "L"
    assert "subject" not in claims and "display_name" not in claims and "username" not in claims


@pytest.mark.parametrize("scope, expected", [
    ("openid", {"sub"}),
    ("openid email", {"sub", "email"}),
    ("openid profile",
     {"sub", "given_name", "family_name", "family_name_initial", "name", "preferred_username"}),
    ("openid roster", {"sub", "grade", "school", "school_id", "sections", "role", "student_number"}),
    ("openid unknown", {"sub"}),
    ("", set()),
])
def test_scopes_narrow_released_claims(scope, expected):
    assert set(oidc_claims(RELEASED, scope)) == expected


def test_scopes_never_add_what_was_not_released():
    released = {"subject": "abc", "given_name": "Ada"}
    assert oidc_claims(released, "openid profile email roster") == {"sub": "abc", "given_name": "Ada"}
    assert fields_for_scope(released, "openid profile email roster") == ["subject", "given_name"]


def test_amr_table():
    assert amr_for("password") == ["pwd"]
    assert amr_for("badge") == ["badge"]
    assert amr_for("badge+pin") == ["badge", "pin", "mfa"]
    assert amr_for("badge+picture") == ["badge", "picture", "mfa"]
    assert amr_for("something new") is None and amr_for(None) is None


def test_id_token_claims():
    claims = id_token_claims(issuer="https://portal.test", client_id="c1", user_claims={"sub": "abc"},
                             now=1000, lifetime=600, auth_time=900, nonce="n", amr=["pwd"], access_token="at")
    assert claims == {"sub": "abc", "iss": "https://portal.test", "aud": "c1", "iat": 1000, "exp": 1600,
                      "auth_time": 900, "nonce": "n", "amr": ["pwd"],
                      "at_hash": create_half_hash("at", "RS256").decode()}
    with pytest.raises(ValueError):
        id_token_claims(issuer="i", client_id="c", user_claims={}, now=0, lifetime=1, auth_time=None)


def test_user_claims_cannot_override_protocol_claims():
    claims = id_token_claims(issuer="https://portal.test", client_id="c1",
                             user_claims={"sub": "abc", "iss": "https://evil.test", "aud": "x"},
                             now=1000, lifetime=600, auth_time=None)
    assert claims["iss"] == "https://portal.test" and claims["aud"] == "c1"


NOW = 10_000


@pytest.mark.parametrize("state, prompt, max_age, hint, expected", [
    (SignInState(None), None, None, None, True),  # nobody signed in
    (SignInState(NOW - 5), None, None, None, False),
    (SignInState(NOW - 5), "login", None, None, True),
    (SignInState(NOW - 5), "consent login", None, None, True),
    (SignInState(NOW - 5), None, 10, None, False),
    (SignInState(NOW - 50), None, 10, None, True),
    (SignInState(NOW), None, 0, None, True),  # max_age=0 is prompt=login
    (SignInState(NOW - 5, subject="s1"), None, None, "s1", False),
    (SignInState(NOW - 5, subject="s1"), None, None, "s2", True),
    # after the sign-in we asked for: satisfied, whatever the request said
    (SignInState(NOW - 5, subject="s1", resumed_at=NOW - 6), "login", 0, "s2", False),
    # the resume marker without a sign-in after it (an older sign-in) does not count
    (SignInState(NOW - 5, resumed_at=NOW - 4), "login", None, None, True),
])
def test_must_sign_in(state, prompt, max_age, hint, expected):
    assert must_sign_in(state, now=NOW, prompt=prompt, max_age=max_age, login_hint=hint) is expected


@pytest.mark.parametrize("raw, expected", [(None, None), ("", None), ("0", 0), ("3600", 3600)])
def test_parse_max_age(raw, expected):
    assert parse_max_age(raw) == expected


@pytest.mark.parametrize("raw", ["-1", "1.5", "soon", "9" * 20, "\u00b2", "\u0663"])
def test_parse_max_age_refuses_garbage(raw):
    with pytest.raises(ValueError):
        parse_max_age(raw)


@pytest.mark.parametrize("url", ["https://app.test/cb", "https://app.test:8443/cb?tenant=1",
                                 "http://127.0.0.1:8000/cb", "http://localhost/cb", "http://[::1]:9/cb"])
def test_client_urls_accepted(url):
    assert check_client_url(url, what="redirect URI") == url


@pytest.mark.parametrize("url", ["http://app.test/cb", "ftp://app.test/cb", "https://app.test/cb#frag",
                                 "https://user:pw@app.test/cb", "https://*.app.test/cb", "/cb",
                                 "javascript:alert(1)",
                                 "https://app.test:99999/cb", "http://127.0.0.1.evil.test/cb"])
def test_client_urls_refused(url):
    with pytest.raises(AdminError):
        check_client_url(url, what="redirect URI")


def test_discovery_document_is_valid():
    base = "https://portal.test"
    doc = provider_metadata(base, authorize=f"{base}/oidc/authorize", token=f"{base}/oidc/token",
                            userinfo=f"{base}/oidc/userinfo", jwks=f"{base}/oidc/jwks",
                            end_session=f"{base}/oidc/logout")
    OpenIDProviderMetadata(doc).validate()
    assert doc["request_uri_parameter_supported"] is False
    assert set(CLAIM_NAMES.values()) <= set(doc["claims_supported"])


@pytest.mark.parametrize("claims, expected", [
    ({"sub": "s1", "iat": NOW}, True),
    ({"sub": "s1", "iat": NOW - 100}, True),  # issued at the sign-in itself
    ({"sub": "s2", "iat": NOW}, False),  # someone else's
    ({"sub": "s1", "iat": NOW - 101}, False),  # issued before this sign-in
    ({"sub": "s1"}, False),
    ({"sub": "s1", "iat": "soon"}, False),
])
def test_id_token_is_for_sign_in(claims, expected):
    assert id_token_is_for_sign_in(claims, subject="s1", auth_time=NOW - 100) is expected


def test_id_token_is_for_no_sign_in_when_nobody_signed_in():
    assert id_token_is_for_sign_in({"sub": "s1", "iat": NOW}, subject="s1", auth_time=None) is False
