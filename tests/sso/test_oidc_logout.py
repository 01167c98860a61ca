"""RP-initiated logout: ends the portal session; redirects only to a registered address."""
from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.sso.test_oidc_support import (  # noqa: F401  (fixtures)
    POST_LOGOUT, Browser, csrf_of, exchange, get_code, live_portal, oidc_world,
)


def id_token_for(client, world) -> str:
    code, verifier, _ = get_code(client, world)
    return exchange(client, world, code, verifier).json["id_token"]


def signed_in(client) -> bool:
    return client.get("/").status_code == 200


def test_logout_with_id_token_hint_redirects_to_registered_uri(client, auth, oidc_world):
    auth.login()
    hint = id_token_for(client, oidc_world)
    response = client.get("/oidc/logout", query_string={
        "id_token_hint": hint, "post_logout_redirect_uri": POST_LOGOUT, "state": "bye-1"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"{POST_LOGOUT}?state=bye-1"
    assert not signed_in(client)


def test_logout_to_an_unregistered_uri_signs_out_without_redirecting(client, auth, oidc_world):
    auth.login()
    hint = id_token_for(client, oidc_world)
    response = client.get("/oidc/logout", query_string={
        "id_token_hint": hint, "post_logout_redirect_uri": "https://evil.test/"})
    assert response.status_code == 200 and "Location" not in response.headers
    assert "You are signed out" in response.get_data(as_text=True)
    assert not signed_in(client)


def test_forged_id_token_hint_gets_a_plain_page_and_no_sign_out(live_portal, oidc_world):
    browser = Browser(live_portal)
    browser.sign_in()
    forged = jwt.encode({"alg": "RS256"}, {"iss": live_portal, "aud": oidc_world.client_id, "sub": "x"},
                        RSAKey.generate_key(2048), algorithms=["RS256"])
    for hint in (forged, "not-a-jwt"):
        response = browser.http.get(f"{live_portal}/oidc/logout", allow_redirects=False, params={
            "id_token_hint": hint, "post_logout_redirect_uri": POST_LOGOUT})
        assert response.status_code == 400 and "Location" not in response.headers
    assert browser.http.get(f"{live_portal}/", allow_redirects=False).status_code == 200


def test_logout_without_hint_asks_first(live_portal, oidc_world):
    browser = Browser(live_portal)
    browser.sign_in()
    page = browser.http.get(f"{live_portal}/oidc/logout",
                            params={"post_logout_redirect_uri": POST_LOGOUT}, allow_redirects=False)
    assert page.status_code == 200 and "Sign out of the portal?" in page.text
    assert browser.http.get(f"{live_portal}/", allow_redirects=False).status_code == 200  # not yet
    done = browser.http.post(f"{live_portal}/oidc/logout/confirm", data={"csrf_token": csrf_of(page.text)},
                             allow_redirects=False)
    assert done.status_code == 200 and "You are signed out" in done.text
    assert browser.http.get(f"{live_portal}/", allow_redirects=False).status_code == 302


def test_logout_confirmation_needs_csrf(live_portal, oidc_world):
    browser = Browser(live_portal)
    browser.sign_in()
    response = browser.http.post(f"{live_portal}/oidc/logout/confirm", allow_redirects=False)
    assert response.status_code == 400
    assert browser.http.get(f"{live_portal}/", allow_redirects=False).status_code == 200


def test_id_token_hint_from_another_issuer_is_refused(client, auth, oidc_world, app):
    from portal.sso.oidc.keys import keys_dir, load_keys
    auth.login()
    ring = load_keys(keys_dir(app.config["SETTINGS"]))
    hint = ring.sign({"iss": "https://elsewhere.test", "aud": oidc_world.client_id, "sub": "x"})
    response = client.get("/oidc/logout", query_string={"id_token_hint": hint,
                                                         "post_logout_redirect_uri": POST_LOGOUT})
    assert response.status_code == 400 and "Location" not in response.headers
