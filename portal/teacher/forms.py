"""How a staff route answers: JSON to a script, and to a form on a teacher page, the page again
with a message. The routes behind the teacher pages' buttons (badges, devices) share this."""
from __future__ import annotations

import re

from flask import flash, jsonify, redirect, request, url_for

from portal.errors import wants_json

# Where a form may send the browser back to: the teacher pages, and nowhere else.
_BACK = re.compile(r"/teacher/(sections/[0-9]{1,18}|\?school=[0-9]{1,18})?")

def back() -> str:
    """The teacher page the form came from (its `next` field), or My classes."""
    target = request.form.get("next", "")
    return target if _BACK.fullmatch(target) else url_for("teacher.classes")


def answer(message: str, **fields):
    """JSON `fields` for a script; for a teacher page's form, back to that page with `message`."""
    if wants_json():
        return jsonify(**fields)
    flash(message)
    return redirect(back(), 303)
