"""How a staff route answers: JSON to a script, and to a form on a teacher page, the page again
with a message. The routes behind the teacher pages' buttons (badges, devices) share this."""
from __future__ import annotations

import re

from flask import flash, jsonify, redirect, request, session, url_for

from portal.errors import wants_json

# Where a form may send the browser back to: the teacher pages, and nowhere else.
_BACK = re.compile(r"/teacher/(sections/[0-9]{1,18}|\?school=[0-9]{1,18})?")

def back() -> str:
    """The teacher page the form came from (its `next` field), or My classes."""
    target = request.form.get("next", "")
    return target if _BACK.fullmatch(target) else url_for("teacher.classes")


def back_link() -> tuple[str, str]:
    """back(), with its words, for an error page's link (PortalError.back)."""
    came_from = back()
    return came_from, ("Back to my classes" if came_from == url_for("teacher.classes")
                       else "Back to the class")


def answer(message: str, **fields):
    """JSON `fields` for a script; for a teacher page's form, back to that page with `message`."""
    if wants_json():
        return jsonify(**fields)
    flash(message)
    return redirect(back(), 303)


def note_for_next_page(message: str, category: str = "message") -> None:
    """flash(), from a route whose answer is not the page (a sheet of badges, committed) but
    which sends the teacher back to one: should the session store fail to keep the message
    (Redis gone, or full), the message is lost, not the answer. Only when nothing else was
    written to the session in this request (that must be stored, or the answer is the 503)."""
    if not session.modified:
        session.only_messages = True
    flash(message, category)
