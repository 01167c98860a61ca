"""What can go wrong with a SAML request, in words for the person who met it."""
from __future__ import annotations

from portal.errors import Advice, PortalError, tell

_APP_ADVICE = tell("Go back to your apps and open it from there. If it keeps happening, tell {whom}.")


class SamlError(PortalError):
    """A SAML message we refuse; `reason` is the precise cause, for logs and tests."""

    status = 400
    title = "This app sent a sign-in request we can't accept"
    advice = _APP_ADVICE

    def __init__(self, reason: str, title: str | None = None, advice: str | None = None):
        super().__init__(title, advice)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class MalformedMessage(SamlError):
    """Not a SAML message we can read (bad encoding, bad XML, DTDs or entities)."""


class UnknownServiceProvider(SamlError):
    title = "This app is not set up for sign-in here"
    advice = Advice(student="Ask your teacher or the district to add the app, then try again.",
                    staff="Ask a district administrator to add the app, then try again.",
                    anyone="Ask the school office or the district to add the app, then try again.")


class BadDestination(SamlError):
    """The request names an ACS URL, binding or destination we did not register."""


class BadSignature(SamlError):
    """A signature is missing where one is required, or does not verify."""


class StaleRequest(SamlError):
    """IssueInstant outside the allowed clock skew."""

    advice = "Go back to the app and start again. If it keeps happening, the app's clock may be wrong."


class ReplayedRequest(SamlError):
    advice = "Go back to the app and start again."


class AppNotGranted(SamlError):
    status = 403
    title = "This app isn't one of your apps"
    advice = Advice(student="Ask your teacher if you should have it.",
                    staff="Ask a district administrator if you should have it.",
                    anyone="Ask the school office if you should have it.")


class ReleaseMisconfigured(SamlError):
    status = 409
    title = "This app isn't set up right yet"
    advice = tell("Tell {whom}: the district needs to fix the app's settings.")


class UnsendableDetails(SamlError):
    """A released value XML cannot carry (U+FFFE in a name stored before the roster refused it)."""
    status = 409
    title = "Your details can't be sent to this app"
    advice = tell("Tell {whom}: a name in the roster holds a character that is not text, and the "
                  "district needs to fix it there.")
