"""Sign-in and sign-out pages."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import redirect, render_template, request, url_for
from flask_login import current_user

from portal.auth import bp
from portal.auth.forms import LoginForm
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


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    next_url = request.values.get("next")
    if form.validate_on_submit():
        try:
            person = check_password(db.session, LoginLimits.for_app(), form.username.data,
                                    form.password.data, request.remote_addr or "unknown")
        except (InvalidCredentials, TooManyFailedLogins) as e:
            return render_template("auth/login.html", form=form, error=e, next=next_url), e.status
        sign_in(person, method="password")
        return redirect(_safe_next(next_url))
    if request.method == "GET" and current_user.is_authenticated:
        return redirect(_safe_next(next_url))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form, next=next_url), status


@bp.route("/logout", methods=["POST"])
def logout():
    sign_out()
    return redirect(url_for("auth.login"))
