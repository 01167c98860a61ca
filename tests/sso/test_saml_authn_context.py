"""RequestedAuthnContext: the app is told how the student signed in, and hears NoAuthnContext when
that is not what it asked for (python3-saml builds the requests and reads the answers)."""
from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
from lxml import etree

from sqlalchemy import select

from portal.db import db
from portal.models import App
from portal.sso.saml import constants as c
from portal.sso.saml.authn_context import (
    RequestedContext, answered_class, is_met, read_requested_context,
)
from portal.sso.saml.errors import MalformedMessage
from tests.badges.conftest import enroll_kiosk, issue, new_client
from tests.conftest import AuthActions
from tests.sso.conftest import SP_ACS, SP_ENTITY_ID, PeerSP, SamlWorld, register_and_grant, saml_response_of
from tests.sso.test_saml_http import assert_plain_refusal, post, request_xml, signed_in  # noqa: F401
from tests.sso.test_saml_requests import redirect_query

METHODS = ("badge", "badge+picture", "badge+pin", "password")


def requested(comparison=None, classes=(), declarations=()) -> str:
    attr = f' Comparison="{comparison}"' if comparison else ""
    refs = "".join(f"<saml:AuthnContextClassRef>{x}</saml:AuthnContextClassRef>" for x in classes)
    refs += "".join(f"<saml:AuthnContextDeclRef>{x}</saml:AuthnContextDeclRef>" for x in declarations)
    return f"<samlp:RequestedAuthnContext{attr}>{refs}</samlp:RequestedAuthnContext>"


def read(xml_fragment: str) -> RequestedContext | None:
    return read_requested_context(etree.fromstring(request_xml(extra=xml_fragment)))


def met_by(comparison, *classes) -> list[str]:
    return [m for m in METHODS if is_met(RequestedContext(comparison, classes), m)]


# --- the rules, as pure functions -----------------------------------------------------------------

def test_exact_is_the_default_and_means_one_of_the_classes():
    assert read("") is None
    assert read(requested(classes=[c.AC_PASSWORD])) == RequestedContext("exact", (c.AC_PASSWORD,))
    assert met_by("exact", c.AC_PASSWORD) == ["password"]
    assert met_by("exact", c.AC_BADGE, c.AC_BADGE_PIN) == ["badge", "badge+pin"]
    assert met_by("exact", c.AC_PASSWORD_PLAIN) == []  # we say PasswordProtectedTransport


def test_comparisons_follow_the_documented_order():
    # badge < badge+picture < badge+pin < password
    assert met_by("minimum", c.AC_BADGE_PICTURE) == ["badge+picture", "badge+pin", "password"]
    assert met_by("minimum", c.AC_PASSWORD) == ["password"]
    assert met_by("minimum", c.AC_UNSPECIFIED) == list(METHODS)
    assert met_by("better", c.AC_BADGE) == ["badge+picture", "badge+pin", "password"]
    assert met_by("better", c.AC_BADGE, c.AC_BADGE_PIN) == ["password"]  # stronger than each
    assert met_by("better", c.AC_PASSWORD) == []
    assert met_by("maximum", c.AC_BADGE_PIN) == ["badge", "badge+picture", "badge+pin"]
    assert met_by("maximum", c.AC_BADGE) == ["badge"]


def test_password_ranks_below_password_protected_transport_and_above_every_badge():
    """SAML core 3.3.2.2.1: "minimum" is met by a class at least as strong. Password says nothing
    of the transport, so PasswordProtectedTransport is stronger; no badge is a password."""
    assert met_by("minimum", c.AC_PASSWORD_PLAIN) == ["password"]
    assert met_by("better", c.AC_PASSWORD_PLAIN) == ["password"]
    assert met_by("maximum", c.AC_PASSWORD_PLAIN) == ["badge", "badge+picture", "badge+pin"]
    assert met_by("better", c.AC_BADGE_PIN) == ["password"]
    assert answered_class(RequestedContext("minimum", (c.AC_PASSWORD_PLAIN,)), "password") == c.AC_PASSWORD


def test_exact_unspecified_is_always_met_and_answered_as_unspecified():
    """Answering "unspecified" is always true; a class the request also names is said instead."""
    assert met_by("exact", c.AC_UNSPECIFIED) == list(METHODS)
    for method in METHODS:
        assert answered_class(RequestedContext("exact", (c.AC_UNSPECIFIED,)), method) == c.AC_UNSPECIFIED
    both = RequestedContext("exact", (c.AC_PASSWORD, c.AC_UNSPECIFIED))
    assert answered_class(both, "password") == c.AC_PASSWORD
    assert answered_class(both, "badge") == c.AC_UNSPECIFIED   # never a password for a badge
    assert answered_class(None, "badge+pin") == c.AC_BADGE_PIN


def test_classes_we_do_not_rank_and_declarations_are_never_met():
    kerberos = "urn:oasis:names:tc:SAML:2.0:ac:classes:Kerberos"
    for comparison in ("exact", "minimum", "better", "maximum"):
        assert met_by(comparison, kerberos) == []
    assert met_by("better", c.AC_BADGE, kerberos) == []
    assert met_by("minimum", kerberos, c.AC_BADGE_PIN) == ["badge+pin", "password"]
    assert read(requested(declarations=["https://sp.test/decl"])) == RequestedContext("exact", ())
    assert met_by("minimum") == met_by("better") == []


@pytest.mark.parametrize("fragment", [
    requested("stronger", [c.AC_PASSWORD]),
    requested(),
    requested(classes=[""]),
    requested(classes=[c.AC_PASSWORD], declarations=["https://sp.test/decl"]),
    requested(classes=[c.AC_PASSWORD]) * 2,
    requested(classes=[c.AC_PASSWORD] * 17),
], ids=["unknown-comparison", "empty", "blank-class", "classes-and-declarations", "twice", "too-many"])
def test_unreadable_requested_context_is_a_plain_refusal(client, signed_in, fragment):  # noqa: F811
    with pytest.raises(MalformedMessage):
        read(fragment)
    assert_plain_refusal(client.get("/saml/sso?" + redirect_query(request_xml(extra=fragment))))
    assert_plain_refusal(post(client, request_xml(extra=fragment)))


# --- what the app sees --------------------------------------------------------------------------

def peer_asking(world, classes=True, comparison="exact") -> PeerSP:
    """The world's SP, sending RequestedAuthnContext; True is python3-saml's default
    (PasswordProtectedTransport)."""
    peer = PeerSP(world.idp_metadata, world.peer.keys)
    peer.settings.get_security_data().update(
        requestedAuthnContext=classes, requestedAuthnContextComparison=comparison,
        failOnAuthnContextMismatch=classes is not True)
    return peer


def signed_in_by(client, method: str) -> None:
    """The session's sign-in method set by hand; a badge method with a badge of the student's
    (a badge session names its badge, and is refused without one)."""
    from flask import current_app

    from portal.badges.services import issue_badge
    from portal.models import Person
    with client.session_transaction() as session:
        session["auth_method"] = method
        if method.startswith("badge"):
            person = db.session.get(Person, int(session["_user_id"]))
            issued = issue_badge(db.session, current_app.extensions["redis"], person)
            session["badge_id"] = issued.badge.id


def status_codes(form) -> list[str]:
    root = etree.fromstring(base64.b64decode(form.fields["SAMLResponse"]))
    assert root.find(f"{{{c.SAML}}}Assertion") is None
    return [e.get("Value") for e in root.iter(f"{{{c.SAMLP}}}StatusCode")]


def assert_no_authn_context(peer, form, request_id):
    assert status_codes(form) == [c.STATUS_RESPONDER, c.STATUS_NO_AUTHN_CONTEXT]
    assert not peer.consume(form.fields["SAMLResponse"], request_id).is_authenticated()


@dataclass
class BadgeWorld:
    """A grade 1 student signed in by badge at a kiosk, its browser, and a granted python3-saml
    app: `peer` asks for python3-saml's default (PasswordProtectedTransport, exact), `plain` for
    nothing."""
    browser: object
    registered: object
    peer: PeerSP
    plain: PeerSP


@pytest.fixture
def badge_world(app, roster, redis_client, saml_sp_keys):
    school = roster.school("sch-birch")
    student = roster.person("ada", schools=[school], sections=[roster.section(school, "k1", grades="01")],
                            grades="01")
    registered = register_and_grant(db.session, school=school, sp_cert=saml_sp_keys.cert_pem)
    kiosk = enroll_kiosk(app, redis_client, school)
    assert kiosk.sign_in(issue(redis_client, student)).status_code == 302
    metadata = kiosk.browser.get("/saml/metadata").get_data(as_text=True)
    world = SamlWorld(school, student, registered, PeerSP(metadata, saml_sp_keys), metadata)
    return BadgeWorld(kiosk.browser, registered, peer_asking(world), world.peer)


def launch(world: BadgeWorld, binding: str = "redirect"):
    """The asking app's sign-in request by `binding`: (the portal's answer, the request's id)."""
    if binding == "redirect":
        url, request_id = world.peer.redirect_login()
        return saml_response_of(world.browser.get(url)), request_id
    fields, request_id = world.peer.post_login(sign=True)
    return saml_response_of(world.browser.post("/saml/sso", data=fields)), request_id


def assert_badge_answered(world: BadgeWorld, form, request_id) -> None:
    result = world.peer.consume(form.fields["SAMLResponse"], request_id)
    assert result.is_authenticated(), result.get_last_error_reason()
    assert result.get_last_authn_contexts() == [c.AC_BADGE]


def test_password_asked_after_a_badge_sign_in_gets_no_authn_context(badge_world):
    assert_no_authn_context(badge_world.peer, *launch(badge_world))
    assert_no_authn_context(badge_world.peer, *launch(badge_world, "post"))

    url, request_id = badge_world.plain.redirect_login()  # asks for nothing: told it was a badge
    result = badge_world.plain.consume(saml_response_of(badge_world.browser.get(url)).fields["SAMLResponse"],
                                       request_id)
    assert result.is_authenticated() and result.get_last_authn_contexts() == [c.AC_BADGE]


def test_an_app_set_to_ignore_the_requested_context_signs_a_badge_student_in(badge_world, runner):
    # Found by an interoperability review: python3-saml, php-saml and java-saml ask by default for
    # PasswordProtectedTransport, exactly, so a vendor app left at its defaults turned away every
    # badge sign-in (NoAuthnContext). The district may set such an app to have its requests
    # answered whatever they ask; the Response still names the badge, and python3-saml takes it.
    slug = badge_world.registered.slug
    on = runner.invoke(args=["apps", "set-saml", slug, "--ignore-requested-context"])
    assert on.exit_code == 0, on.output
    assert "answers every sign-in request whatever authentication context it asks for" in on.output
    assert_badge_answered(badge_world, *launch(badge_world))
    assert_badge_answered(badge_world, *launch(badge_world, "post"))
    again = runner.invoke(args=["apps", "set-saml", slug, "--ignore-requested-context"])
    assert "had these settings already" in again.output
    off = runner.invoke(args=["apps", "set-saml", slug, "--honour-requested-context"])
    assert off.exit_code == 0 and "only when how the student signed in meets it" in off.output
    assert_no_authn_context(badge_world.peer, *launch(badge_world))


def test_add_saml_takes_ignore_requested_context(runner, app, tmp_path, saml_sp_keys):
    cert = tmp_path / "sp.pem"
    cert.write_bytes(saml_sp_keys.cert_pem)
    added = runner.invoke(args=["apps", "add-saml", "Reading Garden", "--entity-id", SP_ENTITY_ID,
                                "--acs-url", SP_ACS, "--sp-cert", str(cert), "--ignore-requested-context"])
    assert added.exit_code == 0, added.output
    assert "answers every sign-in request whatever authentication context it asks for" in added.output
    with app.app_context():
        assert db.session.scalar(select(App).where(App.slug == "reading-garden")).settings[
            "ignore_requested_context"] is True


def test_password_asked_after_a_password_sign_in_is_answered(client, signed_in):  # noqa: F811
    peer = peer_asking(signed_in)
    url, request_id = peer.redirect_login()
    result = peer.consume(saml_response_of(client.get(url)).fields["SAMLResponse"], request_id)
    assert result.is_authenticated() and result.get_last_authn_contexts() == [c.AC_PASSWORD]


def test_app_that_asks_for_badge_classes_gets_them(client, signed_in):  # noqa: F811
    signed_in_by(client, "badge+pin")
    exact = peer_asking(signed_in, [c.AC_BADGE_PIN, c.AC_BADGE_PICTURE])
    url, request_id = exact.redirect_login()
    result = exact.consume(saml_response_of(client.get(url)).fields["SAMLResponse"], request_id)
    assert result.is_authenticated(), result.get_errors()
    assert result.get_last_authn_contexts() == [c.AC_BADGE_PIN]

    minimum = peer_asking(signed_in, [c.AC_BADGE], comparison="minimum")
    minimum.settings.get_security_data()["failOnAuthnContextMismatch"] = False
    url, request_id = minimum.redirect_login()
    form = saml_response_of(client.get(url))
    assert minimum.consume(form.fields["SAMLResponse"], request_id).is_authenticated()
    at_least_password = peer_asking(signed_in, [c.AC_PASSWORD], comparison="minimum")
    url, request_id = at_least_password.redirect_login()
    assert_no_authn_context(at_least_password, saml_response_of(client.get(url)), request_id)


def test_at_least_password_is_answered_after_a_password_with_the_stronger_class(client, signed_in):  # noqa: F811
    peer = peer_asking(signed_in, [c.AC_PASSWORD_PLAIN], comparison="minimum")
    peer.settings.get_security_data()["failOnAuthnContextMismatch"] = False
    url, request_id = peer.redirect_login()
    result = peer.consume(saml_response_of(client.get(url)).fields["SAMLResponse"], request_id)
    assert result.is_authenticated(), result.get_errors()
    assert result.get_last_authn_contexts() == [c.AC_PASSWORD]
    signed_in_by(client, "badge+pin")
    url, request_id = peer.redirect_login()
    assert_no_authn_context(peer, saml_response_of(client.get(url)), request_id)


@pytest.mark.parametrize("method", ["password", "badge"])
def test_exactly_unspecified_is_answered_unspecified(app, client, signed_in, method):  # noqa: F811
    """python3-saml checks that the class answered is one it asked for; also when the request
    waited for the student to sign in."""
    peer = peer_asking(signed_in, [c.AC_UNSPECIFIED])
    signed_in_by(client, method)
    url, request_id = peer.redirect_login()
    result = peer.consume(saml_response_of(client.get(url)).fields["SAMLResponse"], request_id)
    assert result.is_authenticated(), result.get_errors()
    assert result.get_last_authn_contexts() == [c.AC_UNSPECIFIED]
    browser = new_client(app)
    url, request_id = peer.redirect_login()
    assert browser.get(url).headers["Location"] == "/saml/resume"
    AuthActions(browser).login(query_string={"next": "/saml/resume"})
    signed_in_by(browser, method)
    result = peer.consume(saml_response_of(browser.get("/saml/resume")).fields["SAMLResponse"], request_id)
    assert result.is_authenticated(), result.get_errors()
    assert result.get_last_authn_contexts() == [c.AC_UNSPECIFIED]


def test_force_authn_that_signing_in_again_cannot_meet_is_answered_at_once(client, signed_in):  # noqa: F811
    signed_in_by(client, "badge")
    peer = peer_asking(signed_in)
    url, request_id = peer.redirect_login(force_authn=True)
    assert_no_authn_context(peer, saml_response_of(client.get(url)), request_id)


def test_requested_context_waits_with_the_request_for_the_sign_in(app, saml_world):
    peer = peer_asking(saml_world)
    for method, answered in (("password", True), ("badge", False)):
        browser = new_client(app)  # a browser of its own, signed out
        url, request_id = peer.redirect_login()
        assert browser.get(url).headers["Location"] == "/saml/resume"
        AuthActions(browser).login(query_string={"next": "/saml/resume"})
        signed_in_by(browser, method)
        form = saml_response_of(browser.get("/saml/resume"))
        if answered:
            assert peer.consume(form.fields["SAMLResponse"], request_id).is_authenticated()
        else:
            assert_no_authn_context(peer, form, request_id)
        assert browser.get("/saml/resume").status_code == 400  # used up either way

