"""Every route, fed seeded hostile and broken requests by a visitor, a student, a teacher and an
admin, answers in words: never a server error, never a traceback.

tests/badges/test_hostile_routes.py gives every route each hostile value in every field at once;
this mixes them, at random but seeded (the same every run), and near the real thing where that
reaches deeper: authorization requests and token exchanges of a registered client with one or two
parts spoiled, AuthnRequests of a registered service provider with a hostile attribute or issuer,
badge scans with a real device credential and a spoiled token; XML with entities, deflated or not,
random bytes and JSON of the wrong shape among the bodies.
"""
from __future__ import annotations

import base64
import json
import random
import re
import zlib
from datetime import datetime, timezone
from xml.sax.saxutils import escape, quoteattr

import pytest
from werkzeug.datastructures import MultiDict

from portal.roster.demo import DEMO_ADMIN, DEMO_STUDENT, DEMO_TEACHER, ELEMENTARY
from tests.badges.test_hostile_routes import HOSTILE
from tests.conftest import csrf_token

REQUESTS_PER_ROLE = 400
SP_ID, ACS = "https://hostile.test/saml/metadata", "https://hostile.test/saml/acs"
REDIRECT = "https://hostile.test/oidc/callback"
SAMLP, SAML = "urn:oasis:names:tc:SAML:2.0:protocol", "urn:oasis:names:tc:SAML:2.0:assertion"

NAMES = ("SAMLRequest SAMLResponse RelayState SigAlg Signature client_id redirect_uri response_type "
         "scope state nonce code_challenge code_challenge_method prompt max_age login_hint id_token_hint "
         "post_logout_redirect_uri code code_verifier grant_type client_secret username password next "
         "pick pin restart school hours name token iss target_link_uri request request_uri").split()
WORDS = [*HOSTILE, "", "a", "99999999999999999999", "1e309", "nan", "%00", "\u202e", "é", "😀" * 50,
         "A" * 70000, "'\"<>&", "../../etc/passwd", "http://evil.example/", "javascript:alert(1)",
         REDIRECT, "openid", "openid profile roster", "code", "S256", "plain", "login", "none",
         "authorization_code", "refresh_token", "null", "[]", "{}", "true", "=" * 10, "%zz",
         "\r\nX-Injected: 1"]
XML = [b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
       b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><x/>', b"\xff\xfe<x/>", b"<x>" * 5000, b"",
       b'<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="" Version="2.0"/>']


def deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Hostile:
    """Seeded hostile requests against the app's routes, near a registered app's real ones."""

    def __init__(self, seed: int, world: dict, routes: list[tuple[str, str]]):
        self.rnd, self.world, self.routes = random.Random(seed), world, routes

    def value(self) -> str:
        pick = self.rnd.random()
        if pick < 0.6:
            return self.rnd.choice(WORDS)
        if pick < 0.75:
            return b64(self.rnd.choice(XML))
        if pick < 0.85:
            return b64(deflate(self.rnd.choice(XML)))
        if pick < 0.9:
            return b64(self.rnd.randbytes(self.rnd.randint(0, 300)))
        return "".join(chr(self.rnd.randint(1, 0x2FFF)) for _ in range(self.rnd.randint(1, 40)))

    def spoil(self, params: dict) -> list[tuple[str, str]]:
        """Drop, replace or repeat one or two of a real request's parameters."""
        pairs = list(params.items())
        for _ in range(self.rnd.randint(1, 2)):
            i = self.rnd.randrange(len(pairs))
            name, _ = pairs[i]
            action = self.rnd.choice(["drop", "replace", "repeat"])
            if action == "drop":
                pairs.pop(i)
            elif action == "replace":
                pairs[i] = (name, self.value())
            else:
                pairs.append((name, self.value()))
            if not pairs:
                break
        return pairs

    def random_params(self) -> list[tuple[str, str]]:
        return [(self.rnd.choice(NAMES), self.value()) for _ in range(self.rnd.randint(0, 6))]

    def authorize(self) -> list[tuple[str, str]]:
        return self.spoil({"response_type": "code", "client_id": self.world["client_id"],
                           "redirect_uri": REDIRECT, "scope": "openid profile", "state": "s",
                           "nonce": f"n{self.rnd.random()}", "code_challenge_method": "S256",
                           "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"})

    def authn_request(self, method: str) -> list[tuple[str, str]]:
        """An AuthnRequest of the registered SP, perhaps with a hostile attribute or issuer."""
        attrs = {"ID": f"_r{self.rnd.random()}", "Version": "2.0",
                 "IssueInstant": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "AssertionConsumerServiceURL": ACS, "ForceAuthn": "false"}
        if self.rnd.random() < 0.7:
            attrs[self.rnd.choice(list(attrs))] = self.value()[:200]
        issuer = SP_ID if self.rnd.random() < 0.7 else self.value()[:200]
        xml = (f'<samlp:AuthnRequest xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" '
               + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items())
               + f"><saml:Issuer>{escape(issuer)}</saml:Issuer></samlp:AuthnRequest>")
        xml = xml.encode("utf-8", "replace")
        # HTTP-Redirect carries it deflated, HTTP-POST as it is
        params = {"SAMLRequest": b64(deflate(xml) if method == "GET" else xml),
                  "RelayState": "https://hostile.test/"}
        return self.spoil(params) if self.rnd.random() < 0.5 else list(params.items())

    def path(self) -> tuple[str, str]:
        """A route and one of its methods, its variable parts filled in."""
        method, route = self.rnd.choice(self.routes)
        fills = {"int": ["0", "1", "5", "61", "99999999999999999999999"],
                 "path": ["css/portal.css", "../portal/__init__.py", "%00", "x/" * 200],
                 "slug": [*self.world["slugs"], "x", "%2e%2e", "é", "a" * 3000],
                 "code": ["ABCD-EFGH", "x" * 600, "%00", "😀"]}
        return method, re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: self.rnd.choice(
            fills.get(m.group(1)) or fills.get(m.group(2)) or fills["code"]), route)

    def headers(self, path: str) -> dict:
        """An Authorization header: the app's real credentials where they belong, or junk."""
        roll, headers = self.rnd.random(), {}
        if path == "/oidc/token" and roll < 0.6:
            secret = self.world["client_secret"] if self.rnd.random() < 0.7 else self.value()
            basic = f"{self.world['client_id']}:{secret}".encode("utf-8", "replace")
            headers["Authorization"] = "Basic " + b64(basic)
        elif path.startswith("/kiosk/") and roll < 0.6:
            headers["Authorization"] = "Bearer " + self.world["credential"]
        elif roll < 0.15:
            junk = ["!!!", b64(b"a:b"), b64(self.rnd.randbytes(20)), ""]
            headers["Authorization"] = "Basic " + self.rnd.choice(junk)
        elif roll < 0.3:
            headers["Authorization"] = "Bearer " + self.value()[:600]
        # a line break in a header is refused by the test client itself, before the app sees it
        return {k: re.sub(r"[\r\n]", "", v) for k, v in headers.items()}

    def params(self, method: str, path: str) -> list[tuple[str, str]]:
        if path == "/oidc/authorize":
            return self.authorize()
        if path == "/saml/sso":
            return self.authn_request(method)
        if path == "/oidc/token":
            return self.spoil({"grant_type": "authorization_code", "code": self.value()[:100],
                               "redirect_uri": REDIRECT, "code_verifier": "v" * 43})
        return self.random_params()

    def request(self, csrf: str) -> tuple[str, str, dict]:
        """One request: (method, path, keyword arguments of the test client's open)."""
        method, path = self.path()
        headers, params = self.headers(path), self.params(method, path)
        if method == "GET":
            return method, path, {"headers": headers, "query_string": params}
        if self.rnd.random() < 0.8:
            params.append(("csrf_token", csrf))
        pick = self.rnd.random()
        if path in ("/kiosk/badge", "/badge/scan", "/kiosk/enroll", "/kiosk/bind") and pick < 0.6:
            body = self.rnd.choice([{"token": self.value()}, {"token": 5}, {"token": None}, {"token": [1]},
                                    {"code": self.value()}, {"token": self.value(), "more": 1}, [], "x"])
            headers["Content-Type"] = "application/json"
            return method, path, {"headers": headers, "data": json.dumps(body)}
        if pick < 0.05:
            return method, path, {"headers": headers, "data": self.rnd.randbytes(self.rnd.randint(0, 2000))}
        return method, path, {"headers": headers, "data": MultiDict(params)}


@pytest.fixture
def world(app, runner):
    """The demo district, a SAML app and an OIDC app granted to the demo student, a kiosk."""
    from portal.admin.services import grant_app
    from portal.badges.kiosks import create_pairing_code, enroll_device
    from portal.db import db
    from portal.models import App, School
    from portal.sso.oidc.clients import register_client
    from portal.sso.saml import register_sp

    assert runner.invoke(args=["demo", "--students", "60"]).exit_code == 0
    with app.app_context():
        saml = register_sp(db.session, "Hostile Reading", entity_id=SP_ID, acs_urls=[ACS])
        grant_app(db.session, saml.slug, school=ELEMENTARY)
        oidc, secret = register_client(db.session, "Hostile Math", redirect_uris=[REDIRECT],
                                       login_uri="https://hostile.test/oidc/login")
        grant_app(db.session, oidc.slug, school=ELEMENTARY)
        school = db.session.query(School).filter_by(sourced_id=ELEMENTARY).one()
        redis = app.extensions["redis"]
        code = create_pairing_code(db.session, redis, school).code
        credential = enroll_device(db.session, redis, code).credential
        world = {"slugs": [a.slug for a in db.session.query(App)], "client_id": oidc.client_id,
                 "client_secret": secret, "credential": credential}
        db.session.remove()
    return world


@pytest.mark.parametrize("account", [None, DEMO_STUDENT, DEMO_TEACHER, DEMO_ADMIN],
                         ids=["visitor", "student", "teacher", "admin"])
def test_hostile_requests_get_answers_in_words(app, world, account):
    routes = [(method, rule.rule) for rule in app.url_map.iter_rules()
              for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    hostile = Hostile(zlib.crc32((account.username if account else "visitor").encode()), world, routes)

    def signed_in():
        client = app.test_client()
        if account is None:
            return client, csrf_token(client)
        signed = client.post("/login", data={"username": account.username, "password": account.password,
                                             "csrf_token": csrf_token(client)})
        assert signed.status_code == 302
        return client, csrf_token(client, "/")

    client, csrf = signed_in()
    for i in range(REQUESTS_PER_ROLE):
        if i % 100 == 99:  # a spoiled request may have signed out, or voided, what came before
            client, csrf = signed_in()
        method, path, kwargs = hostile.request(csrf)
        response = client.open(path, method=method, **kwargs)  # testing: an exception fails the test
        assert response.status_code < 500, (method, path, kwargs, response.status_code)
        assert b"Traceback" not in response.data, (method, path, kwargs)
