"""Where a browser was going when it was asked to sign in, for sign-ins that are not a form.

A password form carries `next` itself. A badge scan does not: the student holds a card up to
the kiosk's camera, and the portal finishes the sign-in in the kiosk's browser through the
hand-off. So the page that asks for a sign-in (the sign-in page with `next`, an app's "sign in
again") leaves a short-lived signed cookie naming the local path to continue to, and the badge
sign-in in the same browser takes it once. Only local paths are kept, and only for 5 minutes:
the next student at the kiosk starts from their own tiles.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, after_this_request, current_app
from itsdangerous import BadData, URLSafeTimedSerializer

from portal.cookies import forget_cookie, read_cookie, set_cookie

COOKIE = "portal_continue"
SECONDS = 5 * 60
# The longest path the sign-in page carries on (in its address, then a hidden field).
MAX_PATH = 2048


def local_path(target: str | None) -> str | None:
    """`target` if it is a path on this portal, else None.

    Only local paths: an open redirect would make the portal a phishing tool. Browsers read
    "/\\evil" as "//evil" and drop tabs and newlines, so those are refused too.
    """
    if (target and len(target) <= MAX_PATH and target.startswith("/") and not target.startswith("//")
            and "\\" not in target and target.isprintable() and " " not in target):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return None


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="portal-continue")


def remember(response: Response, path: str) -> Response:
    """Let the next non-form sign-in in this browser continue to `path` (a local path)."""
    if local_path(path):
        set_cookie(response, COOKIE, _serializer().dumps(path), max_age=SECONDS)
    return response


def take() -> str | None:
    """The path this browser was going to, if it said so recently; it is forgotten either way."""
    raw = read_cookie(COOKIE)
    if raw is None:
        return None

    @after_this_request
    def forget(response: Response) -> Response:
        forget_cookie(response, COOKIE)
        return response

    try:
        return local_path(_serializer().loads(raw, max_age=SECONDS))
    except (BadData, TypeError):
        return None
