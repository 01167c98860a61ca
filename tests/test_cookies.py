"""In production the portal's cookies carry the prefixes browsers enforce, so a sibling subdomain
cannot plant one: __Host- on / (Secure, Path=/, no Domain), __Secure- under a folder. Development
over plain http keeps plain names (browsers refuse prefixed cookies that are not Secure)."""
from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import urlsplit

from flask import make_response

from portal.config import flask_config
from tests.conftest import csrf_token

HTTPS = "https://portal.example"


def _set_cookies(response) -> dict[str, str]:
    """Each cookie the response sets: its name, and the rest of its Set-Cookie header."""
    return {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}


def _host_only(header: str, path: str = "/") -> None:
    attributes = [a.strip() for a in header.split(";")[1:]]
    assert "Secure" in attributes and "HttpOnly" in attributes and "SameSite=Lax" in attributes
    assert f"Path={path}" in attributes
    assert not any(a.lower().startswith("domain=") for a in attributes)


def test_production_names_the_session_cookie_for_this_host_only(settings):
    config = flask_config(replace(settings, env="production"))
    assert config["SESSION_COOKIE_NAME"] == "__Host-portal_session"
    assert config["SESSION_COOKIE_SECURE"] and config["SESSION_COOKIE_HTTPONLY"]
    assert config["SESSION_COOKIE_PATH"] == "/" and config["SESSION_COOKIE_DOMAIN"] is None
    for env in ("development", "testing"):
        config = flask_config(replace(settings, env=env))
        assert config["SESSION_COOKIE_NAME"] == "portal_session"
        assert not config["SESSION_COOKIE_SECURE"]


def test_a_production_session_lives_and_ends_under_its_prefixed_name(production, roster):
    roster.person("ada.lovelace", schools=[roster.school()])
    client = production.test_client()
    form = client.get("/login?next=/", base_url=HTTPS)
    cookies = _set_cookies(form)
    assert set(cookies) == {"__Host-portal_session", "__Host-portal_continue"}
    for header in cookies.values():
        _host_only(header)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', form.get_data(as_text=True))
    signed_in = client.post("/login", base_url=HTTPS, headers={"Referer": f"{HTTPS}/login"},
                            data={"username": "ada.lovelace", "password": "correct horse battery",
                                  "csrf_token": token.group(1)})
    assert signed_in.status_code == 302, signed_in.get_data(as_text=True)[:300]
    _host_only(_set_cookies(signed_in)["__Host-portal_session"])
    assert client.get("/", base_url=HTTPS).status_code == 200
    assert client.get_cookie("portal_session", domain="portal.example") is None
    # Signing out removes it the way it was set: a browser ignores the removal of a __Host-
    # cookie that is not Secure, and would keep sending the dead one.
    home = client.get("/", base_url=HTTPS)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', home.get_data(as_text=True))
    signed_out = client.post("/logout", base_url=HTTPS, headers={"Referer": f"{HTTPS}/"},
                             data={"csrf_token": token.group(1)})
    removal = _set_cookies(signed_out)["__Host-portal_session"]
    _host_only(removal)
    assert "Max-Age=0" in removal or "expires=Thu, 01 Jan 1970" in removal


def test_the_saml_cookies_are_secure_prefixed_under_their_folder(production):
    from portal.sso.saml import flows, slo
    with production.test_request_context("/saml/sso", base_url=HTTPS):
        kept = slo.keep_for_browser(flows.PENDING_PREFIX, flows.PENDING_COOKIE, {}, 60, "saml.resume")
        header = _set_cookies(kept)["__Secure-portal_saml_pending"]
        _host_only(header, path="/saml")
        # Forgetting it names it the same way, Secure: a browser ignores it otherwise.
        forgotten = _set_cookies(flows._forget_pending(make_response("")))["__Secure-portal_saml_pending"]
        _host_only(forgotten, path="/saml")
    token = header.split(";")[0].split("=", 1)[1]
    with production.test_request_context("/saml/resume", base_url=HTTPS,
                                         headers={"Cookie": f"__Secure-portal_saml_pending={token}"}):
        from portal.cookies import read_cookie
        assert read_cookie(flows.PENDING_COOKIE, slo.COOKIE_PATH) == token


def _enrolled_kiosk(production, school, script_root: str = ""):
    """A device enrolled at the school: (its API client, its credential, its bind URL's path)."""
    from portal.badges.kiosks import create_pairing_code
    from portal.db import db
    from portal.models import School
    school_id = school.id
    db.session.commit()     # the production app has its own connection: the school must be there
    with production.app_context():
        code = create_pairing_code(db.session, production.extensions["redis"],
                                   db.session.get(School, school_id)).code
    api = production.test_client()
    where = {"base_url": HTTPS + script_root}
    credential = api.post("/kiosk/enroll", json={"code": code}, **where).json["credential"]
    bind = api.post("/kiosk/bind", json={}, headers={"Authorization": f"Bearer {credential}"},
                    **where).json["bind_url"]
    return api, credential, urlsplit(bind).path


def test_a_bound_kiosk_browser_gets_prefixed_cookies(production, roster):
    _, _, bind = _enrolled_kiosk(production, roster.school())
    browser = production.test_client()
    bound = browser.get(bind, base_url=HTTPS)
    assert bound.status_code == 200
    cookies = _set_cookies(bound)
    _host_only(cookies["__Secure-portal_kiosk"], path="/kiosk/")
    _host_only(cookies["__Host-portal_shared_device"])


def test_a_device_mark_under_its_old_plain_name_is_not_read_nor_promoted(production, roster,
                                                                         redis_client):
    # A plain name is what a sibling subdomain can plant (a review found the first upgrade fix
    # read and promoted it). A kiosk bound before the prefixes binds again when its program
    # restarts (README: after upgrading).
    from tests.badges.conftest import issue
    school = roster.school()
    student = roster.person("kim.kinder", schools=[school], grades="01")
    api, credential, bind = _enrolled_kiosk(production, school)
    value = _set_cookies(production.test_client().get(bind, base_url=HTTPS))["__Secure-portal_kiosk"]
    old = production.test_client()
    old.set_cookie("portal_kiosk", value.split(";")[0].split("=", 1)[1], domain="portal.example",
                   path="/kiosk/")
    old.set_cookie("portal_shared_device", "1", domain="portal.example")
    handoff = api.post("/kiosk/badge", json={"token": issue(redis_client, student)}, base_url=HTTPS,
                       headers={"Authorization": f"Bearer {credential}"}).json["handoff_url"]
    opened = old.get(urlsplit(handoff).path, base_url=HTTPS)
    assert opened.status_code == 403
    assert not [c for c in _set_cookies(opened) if "kiosk" in c or "shared" in c]


def test_a_portal_served_under_a_path_scopes_its_folder_cookies_under_it(production, roster):
    # Found by review: at /portal, the kiosk cookie was set on /kiosk/, where the browser never
    # sends it (its hand-offs all failed); the SAML cookies likewise on /saml.
    _, _, bind = _enrolled_kiosk(production, roster.school(), "/portal")
    assert bind.startswith("/portal/kiosk/bind/")
    bound = production.test_client().get(bind[len("/portal"):], base_url=HTTPS + "/portal")
    assert bound.status_code == 200
    _host_only(_set_cookies(bound)["__Secure-portal_kiosk"], path="/portal/kiosk/")
    _host_only(_set_cookies(bound)["__Host-portal_shared_device"])


def test_development_keeps_plain_names(client):
    page = client.get("/login?next=/")
    assert set(_set_cookies(page)) == {"portal_session", "portal_continue"}
    assert csrf_token(client)
