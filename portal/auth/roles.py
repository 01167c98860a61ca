"""The one role check, made on the server for every protected view."""
from __future__ import annotations

from functools import wraps

from flask import abort, redirect, request
from flask_login import current_user

from portal.errors import SIGN_IN_REQUIRED, error_page, wants_json
from portal.models import Role


def role_required(*roles: Role):
    """Let the view run only for a signed-in person holding one of `roles`."""
    allowed = {Role(r) for r in roles}

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                if wants_json():
                    # A script (a staff tool, the teacher pages' fetches) reads a status, not
                    # the sign-in page it would be redirected to.
                    return error_page(401)
                back = _scanner_for_signed_out()
                if back:
                    return redirect(back)
                from portal.extensions import login_manager
                return login_manager.unauthorized()
            if allowed and current_user.role not in allowed:
                abort(403)
            if allowed and current_user.role is Role.district_admin and current_user.district_id is None:
                # A district admin whose district the roster removed has authority nowhere: the
                # pages compare districts, and "no district" must not match every no one.
                abort(403)
            return view(*args, **kwargs)
        setattr(wrapped, SIGN_IN_REQUIRED, True)
        return wrapped

    return decorator


signed_in = role_required()

# A child's own pages on a shared classroom device: opened there once the child's session has run
# out (or they signed out), they bring back the scanner the browser signs children in at.
_CHILDS_PAGES = ("launchpad.tiles", "badges.home")


def _scanner_for_signed_out() -> str | None:
    if request.endpoint not in _CHILDS_PAGES or request.method != "GET":
        return None
    from portal.badges import flow   # the badge flows import the auth package
    return flow.scanner_of_browser()
