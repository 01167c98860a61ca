"""Sign-in and sign-out pages."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import redirect, render_template, request, url_for
from flask_login import current_user

from portal.auth import bp
from portal.auth.services import (
    InvalidCredentials, LoginLimits, TooManyFailedLogins, check_password, sign_in, sign_out,
)
from portal.db import db


def _safe_next(target: str | None) -> str:
    # Only local paths: an open redirect would make the portal a phishing tool. Browsers read
    # "/\evil" as "//evil" and drop tabs and newlines, so those are refused too.
    if (target and len(target) <= 2048 and target.startswith("/") and not target.startswith("//")
            and "\\" not in target and target.isprintable() and " " not in target):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("launchpad.tiles")


def _login_page(status: int = 200, *, username: str = "", error=None, missing: bool = False):
    return render_template("auth/login.html", username=username, error=error, missing=missing,
                           next=request.values.get("next")), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    # Two plain fields: CSRFProtect has checked every POST before this runs (a form library
    # would check the token a second time and cost a sign-in rush more than the rest of the page).
    next_url = request.values.get("next")
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(_safe_next(next_url))
        return _login_page()
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    if not username or not password or len(username) > 255 or len(password) > 1024:
        return _login_page(400, username=username[:255], missing=True)
    try:
        person = check_password(db.session, LoginLimits.for_app(), username, password,
                                request.remote_addr or "unknown")
    except (InvalidCredentials, TooManyFailedLogins) as e:
        return _login_page(e.status, username=username, error=e)
    sign_in(person, method="password")
    return redirect(_safe_next(next_url))


@bp.route("/logout", methods=["POST"])
def logout():
    sign_out()
    return redirect(url_for("auth.login"))
