"""The printable badge sheet for a section's teachers and admins: a POST, since it issues cards.

By default the sheet holds a card for each of the class's badge students who has none that
works at its school: a card printed for another class of theirs (homeroom, art, music) keeps
working. `replace` (a form's "Replace every card in this class", its box ticked) makes a new
card for every one of them, and their cards stop at once.

The answer is the PDF, shown inline (the browser's PDF viewer, to print) and kept by no cache;
the tokens it holds are in no log.
"""
from __future__ import annotations

from flask import make_response, url_for
from flask_login import current_user

from portal.auth.roles import role_required
from portal.badges import flow, plural
from portal.badges.permissions import STAFF_ROLES
from portal.badges.services import BadgeError, NotPermitted, SheetConflict, finished
from portal.badges.sheets import (
    NothingToPrint, SheetBadge, badge_name, blank_names_message, inline_pdf, print_section_badges,
    render_sheet,
)
from portal.badges.views import bp
from portal.db import db
from portal.errors import wants_json
from portal.models import Section
from portal.teacher.forms import answer, note_for_next_page


# On a sheet whose old cards' sessions could not be ended (Redis failed after the commit).
REPLACED_NOTE = "The old cards no longer work. Apps opened with them may stay signed in until they time out."


def _replace(form) -> bool:
    """Whether the form asks to replace every card: "yes" (a form) or true (JSON), its box ticked."""
    value = form.get("replace")
    if value in (None, "", False, "no"):
        return False
    if value not in (True, "yes"):
        raise BadgeError("Nothing was printed", 'Send replace as "yes" (or true), or leave it out.')
    if not wants_json() and form.get("confirm") != "yes":
        raise BadgeError("Nothing was replaced",
                         "Tick the box to say you mean to replace every card of the class.")
    return True


@bp.post("/badges/sections/<int:section_id>/sheet")
@role_required(*STAFF_ROLES)
def section_sheet(section_id: int):
    """Cards for the section's students who have none (`replace`: for all of them) as labels
    (`paper`: letter or a4). `expect`: the class page's cards_fingerprint, so that a page older
    than the cards (another tab printed) changes nothing."""
    section = db.session.get(Section, section_id)
    if section is None:
        raise NotPermitted()  # the same answer as a section of someone else's
    form = flow.posted_fields('{"paper": "a4"}')
    paper = str(form.get("paper", "") or "letter").lower()
    expect = form.get("expect")
    try:
        sheet = print_section_badges(
            db.session, flow.redis_client(), section, actor=current_user, paper=paper,
            replace=_replace(form), expect=str(expect) if expect is not None else None,
            default_expires=flow.settings().badge_expires, zone=flow.settings().zone,
            clock=flow.app_clock(), commit=False)
    except NothingToPrint as e:
        if wants_json():
            raise
        return answer(f"{e.title}. {e.advice}")
    except SheetConflict as e:
        e.back = (url_for("teacher.section", section_id=section.id), f"Back to {section.title}")
        raise
    db.session.commit()
    # The new badges are committed: the teacher gets the sheet whatever Redis does now (its
    # tokens are in this answer alone), and the old cards are refused at every scan.
    pdf, note = sheet.pdf, ""
    if not finished(flow.redis_client(), list(sheet.issued)):
        # Said on the sheet itself, as for one card (views.issue): a message for the class page
        # is kept in the Redis that just failed.
        note = REPLACED_NOTE
        pdf = render_sheet([SheetBadge(one.token, badge_name(one.person), section.school.name)
                            for one in sheet.issued], paper, note=note)
    if not wants_json():
        # Shown by the class page the teacher comes back to (the answer here is the sheet), if
        # the session store keeps them.
        note_for_next_page(f"{section.title}: {plural(sheet.badges, 'new card', 'new cards')} on "
                           f"the sheet ({plural(sheet.pages, 'page', 'pages')}).")
        if sheet.incomplete:
            note_for_next_page(blank_names_message(sheet), "problem")
    response = make_response(pdf)
    if note:
        response.headers["X-Badge-Note"] = note
    response.headers["Content-Type"] = "application/pdf"
    # inline: the browser's PDF viewer shows it, to print, and it is in no Downloads folder of
    # a shared computer (no-store: nor in the browser's cache).
    response.headers["Content-Disposition"] = inline_pdf(f"badges {section.title}",
                                                         f"badges-class-{section.id}.pdf")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Badge-Count"] = str(sheet.badges)
    # Labels with a blank line for a name the portal cannot print (see sheets.blank_reasons).
    response.headers["X-Badge-Incomplete-Names"] = str(sheet.incomplete_names)
    return response
