"""On a shared classroom device, the next child's scan ends the last child's portal session, and
with it their sessions at the apps that listen (OpenID Connect Back-Channel Logout): the next
child who opens the app's tab does not find the last child's work."""
from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import KeySet

from portal.db import db
from tests.badges.conftest import issue
from tests.sso.conftest import saml_sp_keys  # noqa: F401  (a fixture)
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



def _ada_in_a_saml_app(redis_client, world, kiosk, keys):
    """Ada signs in at the kiosk and opens a SAML app: the app (a PeerSP) and her sign-in there."""
    from tests.sso.conftest import SP_SLO, PeerSP, register_and_grant, saml_response_of
    registered = register_and_grant(db.session, school=world.school, sp_cert=keys.cert_pem,
                                    slo_url=SP_SLO)
    peer = PeerSP(kiosk.browser.get("/saml/metadata").get_data(as_text=True), keys, slo=SP_SLO)
    kiosk.sign_in(issue(redis_client, world.student))                           # Ada
    ada = peer.consume(saml_response_of(kiosk.browser.get(f"/launch/{registered.slug}"))
                       .fields["SAMLResponse"])
    assert ada.is_authenticated(), ada.get_last_error_reason()
    return peer, ada


def test_the_next_scan_sends_the_browser_round_the_last_childs_saml_apps(app, redis_client, world,
                                                                          kiosk, saml_sp_keys):
    # SAML apps hear in the browser (front channel): the next child's hand-off goes round them
    # with the last child's LogoutRequests, then on to the next child's page.
    from urllib.parse import urlsplit

    peer, ada = _ada_in_a_saml_app(redis_client, world, kiosk, saml_sp_keys)
    handoff = kiosk.sign_in(issue(redis_client, world.classmate))               # Alan scans next
    assert handoff.status_code == 303 and handoff.headers["Location"].endswith("/saml/slo/next")
    hop = kiosk.browser.get("/saml/slo/next")
    result, answer = peer.receive_logout(hop.headers["Location"])
    assert result.get_errors() == [], result.get_last_error_reason()
    assert result.get_last_request_xml() and ada.get_nameid() in result.get_last_request_xml()
    parts = urlsplit(answer)
    back = kiosk.browser.get(f"{parts.path}?{parts.query}")
    done = kiosk.browser.get(urlsplit(back.headers["Location"]).path)
    assert done.status_code == 303 and done.headers["Location"].endswith("/badges/home")
    assert kiosk.browser.get("/badges/home").status_code == 200                 # Alan is signed in


def test_a_refused_scan_leaves_the_last_childs_saml_sign_outs_owed(app, redis_client, world,
                                                                    kiosk, saml_sp_keys):
    # A refused card signs Ada out at once (no hand-off opens in the browser then): her SAML
    # apps hear of it on the way to the next child's page.
    from portal.badges.token import mint_token
    peer, ada = _ada_in_a_saml_app(redis_client, world, kiosk, saml_sp_keys)
    assert kiosk.scan(mint_token()).status_code == 403                          # a card that fails
    assert kiosk.browser.get("/badges/home").status_code == 302                 # Ada is out
    handoff = kiosk.sign_in(issue(redis_client, world.classmate))               # Alan
    assert handoff.status_code == 303 and handoff.headers["Location"].endswith("/saml/slo/next")
    result, _ = peer.receive_logout(kiosk.browser.get("/saml/slo/next").headers["Location"])
    assert ada.get_nameid() in result.get_last_request_xml()


def test_a_scan_after_no_saml_launch_goes_straight_on(app, redis_client, world, kiosk):
    kiosk.sign_in(issue(redis_client, world.student))
    assert kiosk.sign_in(issue(redis_client, world.classmate)).headers["Location"].endswith("/badges/home")


def test_a_double_scan_or_an_unopened_link_does_not_lose_the_last_childs_sign_outs(
        app, redis_client, world, kiosk, saml_sp_keys):
    from tests.badges.conftest import new_client
    from tests.sso.conftest import SP_SLO, PeerSP, register_and_grant, saml_response_of
    registered = register_and_grant(db.session, school=world.school, sp_cert=saml_sp_keys.cert_pem,
                                    slo_url=SP_SLO)
    peer = PeerSP(kiosk.browser.get("/saml/metadata").get_data(as_text=True), saml_sp_keys, slo=SP_SLO)
    kiosk.sign_in(issue(redis_client, world.student))                           # Ada
    saml_response_of(kiosk.browser.get(f"/launch/{registered.slug}"))
    alan = issue(redis_client, world.classmate)
    first = kiosk.scan(alan).json["handoff_url"]                                # read twice:
    second = kiosk.scan(alan).json["handoff_url"]                               # the first is void
    # Opened by another browser first: refused, and what the device owes stays owed.
    assert new_client(app).get(second).status_code == 403
    assert kiosk.browser.get(first).status_code == 403
    # The other browser made the portal ask the device to bind its browser again, as the
    # kiosk program does on that answer; what the device owes is still owed after.
    assert kiosk.scan(alan).status_code == 409
    kiosk.bind_browser()
    second = kiosk.scan(alan).json["handoff_url"]
    handoff = kiosk.browser.get(second)
    assert handoff.status_code == 303 and handoff.headers["Location"].endswith("/saml/slo/next")
    hop = kiosk.browser.get("/saml/slo/next")
    result, _ = peer.receive_logout(hop.headers["Location"])
    assert result.get_errors() == [], result.get_last_error_reason()
    # Told once: the next child's hand-off goes straight on.
    assert kiosk.sign_in(issue(redis_client, world.student)).headers["Location"].endswith("/badges/home")


def test_a_device_owing_more_sign_outs_than_one_round_takes_keeps_the_rest(app, redis_client, world,
                                                                          kiosk):
    from portal.badges.signin import owe_saml_logout
    pipe = redis_client.pipeline()
    owe_saml_logout(pipe, kiosk.device_id, [[n, f"name-{n}", "f", "_s"] for n in range(1, 131)])
    pipe.execute()
    kiosk.sign_in(issue(redis_client, world.student))
    assert redis_client.llen(f"portal:kiosk:saml-logout:{kiosk.device_id}") == 30
