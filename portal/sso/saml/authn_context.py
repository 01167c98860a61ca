"""How the student signed in, as an AuthnContextClassRef, and whether that meets what an app's
RequestedAuthnContext asks for (SAML core 3.3.2.2.1). Pure functions."""
from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from portal.sso.saml import constants as c
from portal.sso.saml.errors import MalformedMessage
from portal.sso.saml.xml import text_of

# session["auth_method"] -> the class we report. An unknown method is "unspecified", never a guess.
CLASSES = {
    "password": c.AC_PASSWORD,
    "badge": c.AC_BADGE,
    "badge+picture": c.AC_BADGE_PICTURE,
    "badge+pin": c.AC_BADGE_PIN,
}

# Strength for Comparison="minimum", "better" and "maximum", weakest first. A badge can be
# photocopied, so a few pictures (12 to pick 3 from) or digits after it count for less than a
# password; and an app that asks for at least a standard class gets that class, not one of ours it
# may not know. Password (a password, the transport unsaid) is below PasswordProtectedTransport,
# which is a password over a protected transport, and above every badge: an app asking for at
# least a password never gets a badge sign-in. Classes not listed here are never met except by an
# exact match, which we never give.
STRENGTH = {
    c.AC_UNSPECIFIED: 0,
    c.AC_BADGE: 1,
    c.AC_BADGE_PICTURE: 2,
    c.AC_BADGE_PIN: 3,
    c.AC_PASSWORD_PLAIN: 4,
    c.AC_PASSWORD: 5,
}
COMPARISONS = ("exact", "minimum", "better", "maximum")
MAX_REQUESTED_CLASSES = 16


def context_class(method: str | None) -> str:
    """Return the AuthnContextClassRef for a sign-in method (session["auth_method"])."""
    return CLASSES.get(method or "", c.AC_UNSPECIFIED)


@dataclass(frozen=True)
class RequestedContext:
    """An app's RequestedAuthnContext. No classes means it named declarations, which we never meet."""

    comparison: str = "exact"
    classes: tuple[str, ...] = ()

    def as_json(self) -> dict:
        return {"comparison": self.comparison, "classes": list(self.classes)}

    @classmethod
    def from_json(cls, data: dict | None) -> "RequestedContext | None":
        return cls(data["comparison"], tuple(data["classes"])) if data else None


def read_requested_context(request: etree._Element) -> RequestedContext | None:
    """Read the AuthnRequest's RequestedAuthnContext, if it has one."""
    found = request.findall(f"{{{c.SAMLP}}}RequestedAuthnContext")
    if not found:
        return None
    if len(found) > 1:
        raise MalformedMessage("the request has more than one RequestedAuthnContext")
    element = found[0]
    comparison = element.get("Comparison", "exact")
    if comparison not in COMPARISONS:
        raise MalformedMessage(f"RequestedAuthnContext Comparison must be one of {', '.join(COMPARISONS)}")
    classes = tuple(text_of(e) for e in element.findall(f"{{{c.SAML}}}AuthnContextClassRef"))
    declarations = element.findall(f"{{{c.SAML}}}AuthnContextDeclRef")
    if bool(classes) == bool(declarations) or not all(classes):
        raise MalformedMessage("RequestedAuthnContext needs class references or declaration references")
    if len(classes) > MAX_REQUESTED_CLASSES:
        raise MalformedMessage("RequestedAuthnContext names too many classes")
    return RequestedContext(comparison, classes)


def answered_class(requested: RequestedContext | None, method: str | None) -> str | None:
    """The AuthnContextClassRef to answer a request with after signing in by `method`, or None
    when that sign-in does not meet it (no RequestedAuthnContext: the method's own class)."""
    ours = context_class(method)
    if requested is None:
        return ours
    if not requested.classes:  # declarations (AuthnContextDeclRef): we publish none to match
        return None
    if requested.comparison == "exact":
        if ours in requested.classes:
            return ours
        # "unspecified" says nothing of how, so it is always true, after a badge too.
        return c.AC_UNSPECIFIED if c.AC_UNSPECIFIED in requested.classes else None
    mine = STRENGTH[ours]
    ranked = [STRENGTH[x] for x in requested.classes if x in STRENGTH]
    if requested.comparison == "minimum":
        met = any(mine >= rank for rank in ranked)
    elif requested.comparison == "maximum":
        met = any(mine <= rank for rank in ranked)
    else:
        # "better": stronger than every class listed, so one we do not rank can never be beaten.
        met = len(ranked) == len(requested.classes) and all(mine > rank for rank in ranked)
    return ours if met else None


def is_met(requested: RequestedContext | None, method: str | None) -> bool:
    """True when signing in by `method` meets the request (no RequestedAuthnContext: always)."""
    return answered_class(requested, method) is not None
