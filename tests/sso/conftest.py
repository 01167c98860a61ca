"""SAML fixtures: an independent service provider (python3-saml, on xmlsec) that talks to the portal;
and a page of the shared Chromium for the browser tests of both protocols."""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from portal.sso.saml.keys import generate_keys

SP_ENTITY_ID = "https://sp.test/saml/metadata"
SP_ACS = "https://sp.test/saml/acs"
SP_OTHER_ACS = "https://sp.test/saml/acs-2"
SP_TARGET = "https://sp.test/lessons/today"
SP_SLO = "https://sp.test/saml/slo"


def cert_body(pem: bytes) -> str:
    return "".join(pem.decode().strip().splitlines()[1:-1])


@pytest.fixture
def page(browser):
    """A page in a browser context of its own (no cookies from other tests)."""
    context = browser.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def saml_sp_keys():
    """The peer SP's own signing key and certificate."""
    return generate_keys("peer SP")


@dataclass
class PostedForm:
    action: str
    fields: dict


def read_post_form(html: str) -> PostedForm:
    """Read the auto-submitting form the portal hands the browser."""
    action = re.search(r'<form method="post" action="([^"]+)"', html)
    assert action, "no form on the page"
    fields = {unescape(name): unescape(value)
              for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)}
    return PostedForm(unescape(action.group(1)), fields)


class PeerSP:
    """A real SAML service provider (python3-saml) configured from the portal's metadata."""

    def __init__(self, idp_metadata: str, keys=None, *, sign_requests: bool = False,
                 entity_id: str = SP_ENTITY_ID, acs: str = SP_ACS, slo: str | None = None,
                 sign_algorithm: str = OneLogin_Saml2_Constants.RSA_SHA256,
                 digest_algorithm: str = OneLogin_Saml2_Constants.SHA256,
                 slo_binding: str = OneLogin_Saml2_Constants.BINDING_HTTP_REDIRECT):
        """`sign_algorithm`, `digest_algorithm`: what the SP signs its own messages with (many
        SPs still sign with SHA-1: pysaml2's default is RSA-SHA1). `slo_binding`: how its logout
        address takes messages (HTTP-POST only, as Spring Security's default)."""
        self.keys = keys
        self.entity_id, self.acs, self.slo = entity_id, acs, slo
        idp = OneLogin_Saml2_IdPMetadataParser.parse(idp_metadata)
        settings = {
            "strict": True,
            "debug": False,
            "sp": {
                "entityId": entity_id,
                "assertionConsumerService": {"url": acs, "binding": OneLogin_Saml2_Constants.BINDING_HTTP_POST},
                "NameIDFormat": OneLogin_Saml2_Constants.NAMEID_UNSPECIFIED,
            },
            "security": {
                "authnRequestsSigned": sign_requests,
                "wantAssertionsSigned": True,
                "wantMessagesSigned": True,
                "rejectDeprecatedAlgorithm": True,
                "requestedAuthnContext": False,
                "signatureAlgorithm": sign_algorithm,
                "digestAlgorithm": digest_algorithm,
            },
        }
        if keys is not None:
            settings["sp"]["x509cert"] = cert_body(keys.cert_pem)
            settings["sp"]["privateKey"] = keys.key_pem.decode()
        if slo is not None:   # Single Logout, its messages signed
            settings["sp"]["singleLogoutService"] = {"url": slo, "binding": slo_binding}
            settings["security"].update(logoutRequestSigned=keys is not None,
                                        logoutResponseSigned=keys is not None)
        security = settings["security"]
        settings = OneLogin_Saml2_IdPMetadataParser.merge_settings(settings, idp)
        settings["security"].update(security)  # the IdP's metadata does not decide the SP's policy
        self.settings = OneLogin_Saml2_Settings(settings, sp_validation_only=False)
        self.idp = idp["idp"]
        # python3-saml checks a posted logout message's fields, not its enveloped signature (it
        # looks for one in the address): receive_logout_post checks that itself, then this.
        settings = dict(settings, security=dict(settings["security"], wantMessagesSigned=False))
        self._post_settings = OneLogin_Saml2_Settings(settings, sp_validation_only=False)

    def _sign(self, xml) -> bytes | str:
        """An enveloped signature, with the algorithms the SP is set to sign with."""
        security = self.settings.get_security_data()
        return OneLogin_Saml2_Utils.add_sign(xml, self.keys.key_pem.decode(), self.keys.cert_pem.decode(),
                                             sign_algorithm=security["signatureAlgorithm"],
                                             digest_algorithm=security["digestAlgorithm"])

    def _request_data(self, post=None, get=None) -> dict:
        url = urlsplit(self.acs)
        return {"https": "on" if url.scheme == "https" else "off", "http_host": url.netloc,
                "script_name": url.path, "get_data": get or {}, "post_data": post or {}}

    def metadata(self) -> bytes:
        return self.settings.get_sp_metadata()

    def redirect_login(self, relay_state: str = SP_TARGET, **kwargs) -> tuple[str, str]:
        """Start SP-initiated SSO over HTTP-Redirect; return (portal URL path+query, request ID)."""
        auth = OneLogin_Saml2_Auth(self._request_data(), self.settings)
        url = auth.login(return_to=relay_state, **kwargs)
        parts = urlsplit(url)
        return f"{parts.path}?{parts.query}", auth.get_last_request_id()

    def authn_request_xml(self, **kwargs) -> tuple[str, str]:
        request = OneLogin_Saml2_Authn_Request(self.settings, **kwargs)
        return request.get_xml(), request.get_id()

    def post_login(self, relay_state: str = SP_TARGET, *, sign: bool | None = None,
                   **kwargs) -> tuple[dict, str]:
        """Start SP-initiated SSO over HTTP-POST; return (form fields, request ID)."""
        xml, request_id = self.authn_request_xml(**kwargs)
        if sign if sign is not None else self.settings.get_security_data()["authnRequestsSigned"]:
            xml = self._sign(xml)
        xml = xml if isinstance(xml, bytes) else xml.encode()
        return {"SAMLRequest": base64.b64encode(xml).decode(), "RelayState": relay_state}, request_id

    def logout(self, name_id: str, session_index: str | None = None, *,
               return_to: str = SP_TARGET,
               name_id_format: str = OneLogin_Saml2_Constants.NAMEID_PERSISTENT) -> tuple[str, str]:
        """Start SP-initiated Single Logout; return (portal URL path+query, request ID)."""
        auth = OneLogin_Saml2_Auth(self._request_data(), self.settings)
        url = auth.logout(return_to=return_to, name_id=name_id, session_index=session_index,
                          name_id_format=name_id_format, spnq=self.entity_id)
        parts = urlsplit(url)
        return f"{parts.path}?{parts.query}", auth.get_last_request_id()

    def logout_post(self, name_id: str, session_index: str | None = None) -> tuple[dict, str]:
        """SP-initiated Single Logout over HTTP-POST (an enveloped signature); (fields, ID)."""
        from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request
        request = OneLogin_Saml2_Logout_Request(
            self.settings, name_id=name_id, session_index=session_index,
            name_id_format=OneLogin_Saml2_Constants.NAMEID_PERSISTENT, spnq=self.entity_id)
        xml = self._sign(request.get_xml())
        xml = xml if isinstance(xml, bytes) else xml.encode()
        return {"SAMLRequest": base64.b64encode(xml).decode(), "RelayState": SP_TARGET}, request.id

    def receive_logout(self, url: str, request_id: str | None = None) -> tuple[OneLogin_Saml2_Auth, str | None]:
        """Receive a LogoutRequest (or, with `request_id`, the answer to ours) at the SLO address,
        as the app would; returns the result and, for a request, where the app sends its answer."""
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == self.slo, url
        get = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        slo = urlsplit(self.slo)
        data = {"https": "on" if slo.scheme == "https" else "off", "http_host": slo.netloc,
                "script_name": slo.path, "get_data": get, "post_data": {}}
        auth = OneLogin_Saml2_Auth(data, self.settings)
        answer = auth.process_slo(keep_local_session=True, request_id=request_id)
        return auth, answer

    def receive_logout_post(self, form: "PostedForm", request_id: str | None = None) -> tuple[dict, dict | None]:
        """Receive a logout message posted to the SLO address (the HTTP-POST binding), as the app
        would: its enveloped signature must verify with the portal's certificate. For a
        LogoutRequest, returns what it names (NameID, SessionIndex, ID) and the fields of the
        app's signed answer, to post back; for the answer to ours (`request_id`), its fields."""
        from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request
        from onelogin.saml2.logout_response import OneLogin_Saml2_Logout_Response
        assert form.action == self.slo, form.action
        xml = base64.b64decode(form.fields.get("SAMLRequest") or form.fields["SAMLResponse"])
        tag = "LogoutRequest" if "SAMLRequest" in form.fields else "LogoutResponse"
        assert OneLogin_Saml2_Utils.validate_sign(xml, self.idp["x509cert"], raise_exceptions=True,
                                                  xpath=f"/samlp:{tag}/ds:Signature")
        slo = urlsplit(self.slo)
        data = {"https": "on" if slo.scheme == "https" else "off", "http_host": slo.netloc,
                "script_name": slo.path, "get_data": {}, "post_data": dict(form.fields)}
        if "SAMLResponse" in form.fields:
            answer = OneLogin_Saml2_Logout_Response(self._post_settings, form.fields["SAMLResponse"])
            assert answer.is_valid(data, request_id, raise_exceptions=True)
            return {"status": answer.get_status()}, None
        request = OneLogin_Saml2_Logout_Request(self._post_settings, form.fields["SAMLRequest"])
        assert request.is_valid(data, raise_exceptions=True)
        asked = {"id": OneLogin_Saml2_Logout_Request.get_id(xml),
                 "name_id": OneLogin_Saml2_Logout_Request.get_nameid(xml),
                 "session_indexes": OneLogin_Saml2_Logout_Request.get_session_indexes(xml)}
        builder = OneLogin_Saml2_Logout_Response(self.settings)
        builder.build(asked["id"])
        signed = self._sign(builder.get_xml())
        signed = signed if isinstance(signed, bytes) else signed.encode()
        fields = {"SAMLResponse": base64.b64encode(signed).decode()}
        if "RelayState" in form.fields:
            fields["RelayState"] = form.fields["RelayState"]
        return asked, fields

    def consume(self, saml_response: str, request_id: str | None = None) -> OneLogin_Saml2_Auth:
        """Receive a SAMLResponse at the ACS as the app would; the result says if it was accepted."""
        auth = OneLogin_Saml2_Auth(self._request_data(post={"SAMLResponse": saml_response}), self.settings)
        auth.process_response(request_id=request_id)
        return auth


@dataclass
class SamlWorld:
    """A school, a student with a password, a registered and granted SAML app, and its SP."""

    school: object
    student: object
    app: object
    peer: PeerSP
    idp_metadata: str


def register_and_grant(db_session, name="Reading Garden", school=None, **kwargs):
    from portal.admin.services import grant_app
    from portal.sso.saml import register_sp
    kwargs.setdefault("entity_id", SP_ENTITY_ID)
    kwargs.setdefault("acs_urls", [SP_ACS, SP_OTHER_ACS])
    kwargs.setdefault("relay_state", SP_TARGET)
    app = register_sp(db_session, name, **kwargs)
    if school is not None:
        grant_app(db_session, app.slug, school=school.sourced_id)
    return app


@pytest.fixture
def saml_world(app, client, roster, saml_sp_keys):
    from portal.db import db
    school = roster.school("sch-maple")
    section = roster.section(school, "sec-4")
    student = roster.person("ada.lovelace", schools=[school], sections=[section])
    registered = register_and_grant(db.session, school=school, sp_cert=saml_sp_keys.cert_pem)
    metadata = client.get("/saml/metadata").get_data(as_text=True)
    peer = PeerSP(metadata, saml_sp_keys)
    return SamlWorld(school, student, registered, peer, metadata)


def saml_response_of(page) -> PostedForm:
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    form = read_post_form(page.get_data(as_text=True))
    assert "SAMLResponse" in form.fields
    return form
