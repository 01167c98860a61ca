"""Sign-in and sign-out pages."""
from __future__ import annotations

from flask import current_app, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user

from portal.auth import bp, destination
from portal.auth.destination import local_path
from portal.auth.services import (
    SHARED_DEVICE_COOKIE, AccountOnHold, InvalidCredentials, LoginLimits, TooManyFailedLogins,
    check_password, sign_in, sign_out,
)
from portal.cookies import read_cookie
from portal.db import db


def _safe_next(target: str | None) -> str:
    return local_path(target) or url_for("launchpad.tiles")


def _login_page(status: int = 200, *, username: str = "", error=None, missing: bool = False):
    from portal.badges import flow   # the badge flows import this package
    # On a scanner device, "Sign in with my badge" goes back to its school's scanner.
    return render_template("auth/login.html", username=username, error=error, missing=missing,
                           next=request.values.get("next"),
                           scanner_school=flow.scanner_school_of_browser()), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    # Two plain fields: CSRFProtect has checked every POST before this runs (a form library
    # would check the token a second time and cost a sign-in rush more than the rest of the page).
    next_url = request.values.get("next")
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(_safe_next(next_url))
        response = make_response(*_login_page())
        if local_path(next_url):
            # A student at a kiosk may scan a badge instead of typing: that continues there too.
            destination.remember(response, next_url)
        return response
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    if not username or not password:
        return _login_page(400, username=username[:255], missing=True)
    try:
        person, password_set_at = check_password(
            db.session, LoginLimits.for_app(), username, password,
            request.remote_addr or "unknown", clear_with=session.on_save,
            take_back_with=session.if_failed)
    except (AccountOnHold, InvalidCredentials, TooManyFailedLogins) as e:
        return _login_page(e.status, username=username[:255], error=e)
    sign_in(person, method="password", password_set_at=password_set_at)
    if read_cookie(SHARED_DEVICE_COOKIE) == "1":
        # A classroom device's browser: the next child must not find this session open for an hour.
        session["_idle"] = current_app.config["SETTINGS"].kiosk_idle_minutes * 60
    return redirect(_safe_next(next_url))


def sign_in_again(app_name: str, next_url: str, *, username: str | None = None):
    """The page for an app that asks the signed-in student to sign in again (OIDC prompt=login
    or max_age, SAML ForceAuthn): the password form that comes back to `next_url`, or, after a
    badge sign-in, "scan your badge again" (the scan in this browser continues to `next_url`)."""
    badge = str(session.get("auth_method", "")).startswith("badge")
    if username is None:
        username = getattr(current_user, "username", "") or ""
    response = make_response(render_template("auth/sign_in_again.html", app_name=app_name,
                                             next=next_url, username=username, badge=badge))
    if badge:
        destination.remember(response, next_url)
    return response


@bp.route("/logout", methods=["POST"])
def logout():
    from portal.sso.saml import slo   # the SAML flows import this module
    apps = slo.participants_of_session()
    then = _after_sign_out()
    sign_out()
    if apps:
        return slo.start(apps, then=then)   # the SAML apps that hear of sign-outs, in turn
    return redirect(then or url_for("auth.login"))


def _after_sign_out() -> str | None:
    """Where a shared classroom device goes once its child signs out (None: the sign-in page):
    a session begun at the in-browser scanner goes back to that scanner, ready for the next
    child; one begun at a classroom kiosk to a page that names no one (the kiosk's camera signs
    the next child in). Neither is a password form that a child cannot read."""
    from portal.badges import flow   # the badge flows import this package
    scanner = flow.scanner_url(session.get(flow.SCANNER_SCHOOL))
    if scanner:
        return scanner
    if session.get("kiosk_device") is not None:
        return url_for("badges.next_child")
    return None
