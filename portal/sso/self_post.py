"""The page that carries a message to an app by a form that submits itself: SAML's HTTP-POST
binding and OpenID's form_post response mode. Its one script is allowed by its hash and nothing
else; the browser sends no Referer and keeps no copy."""
from __future__ import annotations

import base64
import hashlib

from flask import make_response, render_template

AUTO_SUBMIT_JS = "document.forms[0].submit();"
_AUTO_SUBMIT_HASH = base64.b64encode(hashlib.sha256(AUTO_SUBMIT_JS.encode()).digest()).decode()


def self_posting_page(action: str, fields: list[tuple[str, str]], *, heading: str, button: str,
                      form_id: str):
    """The page whose form posts `fields` (application/x-www-form-urlencoded) to `action`, by
    itself, or by its button in a browser without script. `action` may be http: (a test or
    development app): form-action allows https: and http: as the portal's own pages do."""
    page = render_template("sso/self_post.html", action=action, fields=fields, heading=heading,
                           button=button, form_id=form_id, auto_submit_js=AUTO_SUBMIT_JS)
    response = make_response(page)
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'sha256-{_AUTO_SUBMIT_HASH}'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self' https: http:"
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
