"""The two parties: our identity provider and a registered service provider (an App of kind saml)."""
from __future__ import annotations

from dataclasses import dataclass, field

from portal.models import App
from portal.sso.saml.constants import (
    BINDING_POST, BINDING_REDIRECT, NAMEID_EMAIL, NAMEID_PERSISTENT, NAMEID_UNSPECIFIED,
)
from portal.sso.saml.keys import SigningKeys

# Released fields that may serve as the NameID, and the format each is sent in. The pairwise
# subject is the default: opaque and different for every app, which is what "persistent" means.
NAMEID_SOURCES = {
    "subject": NAMEID_PERSISTENT,
    "username": NAMEID_UNSPECIFIED,
    "email": NAMEID_EMAIL,
    "student_number": NAMEID_UNSPECIFIED,
}


def binding_words(binding: str | None) -> str:
    """How an app's Single Logout address takes sign-outs, in the command line's words."""
    return "HTTP-POST" if binding == BINDING_POST else "HTTP-Redirect"


@dataclass(frozen=True)
class IdentityProvider:
    """Us: entity ID, where SPs send requests, and the key we sign with."""

    entity_id: str
    sso_url: str
    keys: SigningKeys
    slo_url: str = ""


@dataclass(frozen=True)
class ServiceProvider:
    """A registered app's SAML settings, read from App.client_id and App.settings."""

    entity_id: str
    acs_urls: tuple[str, ...]  # the first is the default
    # AssertionConsumerServiceIndex -> URL, as the app's metadata numbered them; empty means the
    # position in acs_urls (registrations by --acs-url, and those made before indexes were kept).
    acs_index: dict[int, str] = field(default_factory=dict)
    nameid: str = "subject"
    attributes: dict[str, str] = field(default_factory=dict)  # field -> attribute name, overrides only
    relay_state: str = ""
    require_signed_requests: bool = False
    cert_pem: str | None = None
    # Single Logout: where the app hears that the student's portal session ended, and where it
    # wants our answers to its own logout requests (default: the same), by `slo_binding`
    # (HTTP-Redirect, or HTTP-POST for an app that takes only that, as Spring Security's default).
    slo_url: str = ""
    slo_response_url: str = ""
    slo_binding: str = BINDING_REDIRECT
    # Answer every sign-in request whatever authentication context it asks for, saying how the
    # student signed in: for an app whose SAML library asks for a password sign-in by default
    # (python3-saml, php-saml and java-saml do), which a badge sign-in never meets.
    ignore_requested_context: bool = False

    @classmethod
    def from_app(cls, app: App) -> "ServiceProvider":
        """Read an app's SAML settings (as register_sp wrote them)."""
        s = app.settings or {}
        return cls(
            entity_id=app.client_id or "",
            acs_urls=tuple(s.get("acs_urls") or ()),
            acs_index={int(index): url for index, url in (s.get("acs_index") or {}).items()},
            nameid=s.get("nameid", "subject"),
            attributes=dict(s.get("attributes") or {}),
            relay_state=s.get("relay_state", ""),
            require_signed_requests=bool(s.get("require_signed_requests", False)),
            cert_pem=s.get("sp_cert") or None,
            slo_url=s.get("slo_url") or "",
            slo_response_url=s.get("slo_response_url") or "",
            slo_binding=BINDING_POST if s.get("slo_binding") == BINDING_POST else BINDING_REDIRECT,
            ignore_requested_context=bool(s.get("ignore_requested_context", False)),
        )

    def to_settings(self) -> dict:
        """The JSON kept in App.settings (the entity ID lives in App.client_id)."""
        return {
            "acs_urls": list(self.acs_urls),
            "acs_index": {str(index): url for index, url in self.acs_index.items()},  # JSON keys are text
            "nameid": self.nameid,
            "attributes": dict(self.attributes),
            "relay_state": self.relay_state,
            "require_signed_requests": self.require_signed_requests,
            "sp_cert": self.cert_pem,
            "slo_url": self.slo_url,
            "slo_response_url": self.slo_response_url,
            "slo_binding": self.slo_binding,
            "ignore_requested_context": self.ignore_requested_context,
        }

    @property
    def slo_answer_url(self) -> str:
        """Where our LogoutResponse to the app's own request goes."""
        return self.slo_response_url or self.slo_url

    @property
    def slo_by_post(self) -> bool:
        """Our logout messages go to the app as an HTML form the browser posts (HTTP-POST)."""
        return self.slo_binding == BINDING_POST

    @property
    def default_acs(self) -> str:
        return self.acs_urls[0]

    def acs_for_index(self, index: int) -> str | None:
        """The ACS URL a request's AssertionConsumerServiceIndex names, if the app registered it."""
        if self.acs_index:
            return self.acs_index.get(index)
        return self.acs_urls[index] if 0 <= index < len(self.acs_urls) else None

    @property
    def nameid_format(self) -> str:
        return NAMEID_SOURCES[self.nameid]

    def attribute_name(self, field_name: str) -> str:
        """The SAML attribute name a released field travels under."""
        return self.attributes.get(field_name, field_name)
