"""How a staff route answers: JSON to a script, and to a form on a teacher page, the page again
with a message. The routes behind the teacher pages' buttons (badges, devices) share this."""
from __future__ import annotations

import re

from flask import flash, jsonify, redirect, request, url_for

# Where a form may send the browser back to: the teacher pages, and nowhere else.
_BACK = re.compile(r"/teacher/(sections/[0-9]{1,18}|\?school=[0-9]{1,18})?")


def wants_json() -> bool:
    """A script: it sent JSON or asks for JSON."""
    return request.is_json or request.accept_mimetypes.best == "application/json"


def answer(message: str, **fields):
    """JSON `fields` for a script; for a teacher page's form, back to that page with `message`."""
    if wants_json():
        return jsonify(**fields)
    flash(message)
    back = request.form.get("next", "")
    return redirect(back if _BACK.fullmatch(back) else url_for("teacher.classes"), 303)
