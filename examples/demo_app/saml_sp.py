"""The demo app as a SAML service provider, on python3-saml (an SP library we did not write).

Its settings: our entity ID and ACS, and the portal's metadata (signing certificate, entity ID),
fetched from /saml/metadata the first time a Response arrives, so the app may start first.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.settings import OneLogin_Saml2_Settings


class SamlRefused(Exception):
    """A Response the app does not accept; the message says why."""


@dataclass(frozen=True)
class SamlReceived:
    """Everything the app took from one accepted Response."""

    name_id: str
    name_id_format: str
    attributes: dict[str, list[str]]
    session_index: str | None
    authn_contexts: list[str]
    relay_state: str


class ServiceProvider:
    """One SP: entity ID `{base}/saml/metadata`, ACS `{base}/saml/acs`, trusting one portal."""

    def __init__(self, base_url: str, portal_url: str, *, timeout: float = 5.0):
        self.entity_id = f"{base_url}/saml/metadata"
        self.acs_url = f"{base_url}/saml/acs"
        self.slo_url = f"{base_url}/saml/slo"
        self.metadata_url = f"{portal_url}/saml/metadata"
        self.timeout = timeout
        self._settings: OneLogin_Saml2_Settings | None = None
        self._lock = threading.Lock()
        # Assertion IDs seen lately: python3-saml checks signatures and times, not replays.
        self._seen: OrderedDict[str, None] = OrderedDict()

    def _sp_settings(self) -> dict:
        return {
            "strict": True,
            "debug": False,
            "sp": {
                "entityId": self.entity_id,
                "assertionConsumerService": {"url": self.acs_url, "binding": C.BINDING_HTTP_POST},
                # Single Logout: the portal's signed LogoutRequest arrives here when the student
                # signs out of the portal, and our answer goes back to it (HTTP-Redirect).
                "singleLogoutService": {"url": self.slo_url, "binding": C.BINDING_HTTP_REDIRECT},
                "NameIDFormat": C.NAMEID_PERSISTENT,
            },
            "security": {
                "wantAssertionsSigned": True,
                "wantMessagesSigned": True,
                "rejectDeprecatedAlgorithm": True,
                "requestedAuthnContext": False,
                "signatureAlgorithm": C.RSA_SHA256,
                "digestAlgorithm": C.SHA256,
            },
        }

    def settings(self) -> OneLogin_Saml2_Settings:
        """The python3-saml settings, with the portal's metadata (fetched once)."""
        with self._lock:
            if self._settings is None:
                try:
                    response = requests.get(self.metadata_url, timeout=self.timeout)
                    response.raise_for_status()
                except requests.RequestException as e:
                    raise SamlRefused(f"could not fetch the portal's metadata from {self.metadata_url}: "
                                      f"{type(e).__name__}") from None
                idp = OneLogin_Saml2_IdPMetadataParser.parse(response.text)
                ours = self._sp_settings()
                merged = OneLogin_Saml2_IdPMetadataParser.merge_settings(ours, idp)
                merged["security"].update(ours["security"])  # our policy, not the metadata's
                self._settings = OneLogin_Saml2_Settings(merged, sp_validation_only=False)
            return self._settings

    def metadata(self) -> str:
        """Our SP metadata (what a district would paste into `portal apps add-saml --metadata`)."""
        settings = OneLogin_Saml2_Settings(self._sp_settings(), sp_validation_only=True)
        xml = settings.get_sp_metadata()
        # python3-saml hands back bytes when it signs the metadata and str when it does not (an SP
        # without a certificate, as this one is, in 1.16): decoding str was a 500.
        return xml.decode() if isinstance(xml, bytes) else xml

    def _request_data(self, form: dict, *, url: str | None = None, query: dict | None = None) -> dict:
        # The address the app is published at, not whatever Host header came in.
        at = urlsplit(url or self.acs_url)
        return {"https": "on" if at.scheme == "https" else "off", "http_host": at.netloc,
                "script_name": at.path, "get_data": query or {}, "post_data": form}

    def logout(self, query: dict, forget) -> str:
        """Take the portal's LogoutRequest (signed, checked against its metadata), call `forget`
        to end this app's session, and return where to send the browser with our answer."""
        if "SAMLRequest" not in query:
            raise SamlRefused("no SAMLRequest in the address")
        auth = OneLogin_Saml2_Auth(self._request_data({}, url=self.slo_url, query=query), self.settings())
        answer = auth.process_slo(delete_session_cb=forget)
        if auth.get_errors() or not answer:
            raise SamlRefused(auth.get_last_error_reason() or ", ".join(auth.get_errors()) or "refused")
        return answer

    def consume(self, form: dict) -> SamlReceived:
        """Check a posted SAMLResponse (IdP-initiated: no request ID) and return what it carried."""
        if not form.get("SAMLResponse"):
            raise SamlRefused("no SAMLResponse in the form")
        auth = OneLogin_Saml2_Auth(self._request_data(dict(form)), self.settings())
        auth.process_response(request_id=None)
        if auth.get_errors() or not auth.is_authenticated():
            raise SamlRefused(auth.get_last_error_reason() or ", ".join(auth.get_errors()) or "not signed in")
        if not self._first_use(auth.get_last_assertion_id()):
            raise SamlRefused("this Response was used already")
        return SamlReceived(
            name_id=auth.get_nameid(), name_id_format=auth.get_nameid_format(),
            attributes={k: list(v) for k, v in auth.get_attributes().items()},
            session_index=auth.get_session_index(), authn_contexts=list(auth.get_last_authn_contexts()),
            relay_state=form.get("RelayState", ""),
        )

    def _first_use(self, assertion_id: str, keep: int = 10_000) -> bool:
        with self._lock:
            if assertion_id in self._seen:
                return False
            self._seen[assertion_id] = None
            while len(self._seen) > keep:
                self._seen.popitem(last=False)
            return True
