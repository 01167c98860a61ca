"""/badge: the in-browser badge scanner for a classroom device, where the school allows it.

The page reads badges with the device's camera and decodes them in the page
(static/js/badge-scanner.js); only the token is posted, to /badge/scan, which decides.
`?school=SOURCED_ID` names the school; without it the page opens when any school allows the
browser scanner. Where the school does not, or not from this network (a school may limit the
scanner to its own networks), the page says it uses the classroom kiosk.
"""
from __future__ import annotations

from flask import make_response, render_template, request
from sqlalchemy import select

from portal.badges.policy import policy_for, policy_from_row
from portal.badges.token import PREFIX, TOKEN_LENGTH
from portal.badges.views import bp
from portal.db import db
from portal.errors import error_page
from portal.models import BadgePolicy, School


def _scanner_allowed(school: School | None, address: str | None) -> bool:
    if school is not None:
        policies = [policy_for(db.session, school.id)]
    else:
        policies = [policy_from_row(row.school_id, row) for row in db.session.scalars(
            select(BadgePolicy).where(BadgePolicy.allow_browser_scanner.is_(True)))]
    return any(p.allow_browser_scanner and p.scanner_works_from(address) for p in policies)


@bp.get("/badge")
def scanner():
    """The camera page a student holds their badge up to (or the kiosk explanation)."""
    school = None
    sourced_id = request.args.get("school")
    if sourced_id is not None:
        school = db.session.scalar(select(School).where(School.sourced_id == sourced_id[:255]))
        if school is None:
            return error_page(404, "We can't find that school",
                              "Ask your teacher for the address of this page.")
    allowed = _scanner_allowed(school, request.remote_addr)
    response = make_response(render_template(
        "badges/scanner.html", allowed=allowed, school=school, prefix=PREFIX,
        token_length=TOKEN_LENGTH))
    if allowed:
        # Only this page may ask for the camera; nothing here needs a microphone.
        response.headers["Permissions-Policy"] = "camera=(self), microphone=()"
    return response
