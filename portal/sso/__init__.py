"""Single sign-on: the SAML 2.0 identity provider (portal.sso.saml) and the OpenID Provider (portal.sso.oidc)."""
from __future__ import annotations

import logging
import threading

from portal.errors import PortalError, tell

log = logging.getLogger(__name__)
_logged: set[str] = set()
_logged_lock = threading.Lock()


def log_unavailable(protocol: str, reason: str) -> None:
    """Log why signing in to apps over `protocol` is unavailable, once per reason in this process:
    every request meets it, and the first line says all (the keys are read again each request, so
    a mended file is used without a restart)."""
    line = f"{protocol} is unavailable: {reason}"
    with _logged_lock:
        if line in _logged:
            return
        _logged.add(line)
    log.error("%s", line)


class SigningUnavailable(PortalError):
    """The portal has no usable signing key (the log says which file and why): no app can be
    signed in to until an administrator mends it; nothing was half done."""

    status = 503
    title = "Signing in to apps is not working right now"
    advice = tell("Try again in a few minutes. If it keeps happening, tell {whom}.")
