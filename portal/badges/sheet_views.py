"""The printable badge sheet for a section's teachers and admins: a POST, since it reissues.

The answer is the PDF as a download that no cache keeps; the tokens it holds are in no log.
"""
from __future__ import annotations

import logging

import redis
from flask import make_response
from flask_login import current_user
from werkzeug.utils import secure_filename

from portal.auth.roles import role_required
from portal.badges import flow
from portal.badges.permissions import STAFF_ROLES
from portal.badges.services import NotPermitted, finish_issuing
from portal.badges.sheets import print_section_badges
from portal.badges.views import bp
from portal.db import db
from portal.models import Section

log = logging.getLogger(__name__)


@bp.post("/badges/sections/<int:section_id>/sheet")
@role_required(*STAFF_ROLES)
def section_sheet(section_id: int):
    """Reissue the section's badges and download them as labels (`paper`: letter or a4)."""
    section = db.session.get(Section, section_id)
    if section is None:
        raise NotPermitted()  # the same answer as a section of someone else's
    form = flow.posted_fields('{"paper": "a4"}')
    paper = str(form.get("paper", "") or "letter").lower()
    sheet = print_section_badges(db.session, flow.redis_client(), section, actor=current_user,
                                 paper=paper, default_expires=flow.settings().badge_expires,
                                 zone=flow.settings().zone, clock=flow.app_clock(), commit=False)
    db.session.commit()
    try:
        finish_issuing(flow.redis_client(), list(sheet.issued))
    except redis.RedisError as e:
        # The new badges are committed and the old cards refused at every scan: the teacher
        # gets the sheet; only a session begun with an old card may last to its idle time-out.
        log.warning("badge sheet: Redis went away before old badge sessions ended (%s)",
                    type(e).__name__)
    name = secure_filename(f"badges-{section.title}.pdf".replace(" ", "-").lower()) or "badges.pdf"
    response = make_response(sheet.pdf)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Badge-Count"] = str(sheet.badges)
    # Labels showing a name with letters no installed font has (boxes; the QR works).
    response.headers["X-Badge-Incomplete-Names"] = str(sheet.incomplete_names)
    return response
