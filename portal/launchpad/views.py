"""Tiles and launch. Which apps a person sees and may launch is decided by portal.access."""
from __future__ import annotations

from flask import abort, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user

from portal import access, audit
from portal.admin.icons import icon_bytes
from portal.auth.roles import signed_in
from portal.badges.sessions import is_badge_session
from portal.db import db
from portal.models import AppKind
from portal.launchpad import bp


@bp.route("/")
@signed_in
def tiles():
    if is_badge_session(session):
        # The tiles of a badge sign-in (a shared classroom device): "Not you? Sign out", and
        # the page asks "Are you still here?" when left alone.
        from portal.badges.student_views import badge_tiles
        return badge_tiles()
    apps = access.apps_for(db.session, current_user)
    return render_template("launchpad/tiles.html", apps=apps)


@bp.route("/apps/<slug>/icon")
@signed_in
def icon(slug: str):
    # Served, not inlined in the tiles page: the browser keeps it, so a student's tiles page stays
    # small on a school's shared connection. The URL carries the icon's version (see the template).
    # Only for apps the person may launch: any other app reads as unknown, as at /launch.
    app = access.launchable(db.session, current_user, slug)
    if app is None or not app.icon:
        abort(404)
    kind, data = icon_bytes(app.icon)
    response = make_response(data)
    response.headers["Content-Type"] = kind
    response.headers["Cache-Control"] = "private, max-age=2592000, immutable"
    # An SVG opened on its own must not run anything.
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


def _pressed_elsewhere() -> bool:
    """A badge session's launch that no page of the portal started: typed, a bookmark, the
    address bar's history, another site (the browser's Sec-Fetch-Site; a browser that does not
    send it is not asked). On a shared device that may be the next child, in a new tab, reopening
    the last child's app: the tiles come instead, whose tab check (static/js/this-tab.js) signs
    out in a tab that is not the child's, and in the child's own tab shows the tile to press."""
    if not is_badge_session(session):
        return False
    return request.headers.get("Sec-Fetch-Site", "same-origin") != "same-origin"


@bp.route("/launch/<slug>")
@signed_in
def launch(slug: str):
    if _pressed_elsewhere():
        return redirect(url_for("launchpad.tiles"))
    app = access.launchable(db.session, current_user, slug)
    # An app that exists but is not granted looks exactly like one that does not exist.
    if app is None:
        abort(404)
    if app.kind is AppKind.link:
        audit.record("launch", person=current_user, app=app, data={"protocol": "link", "fields": []})
        return redirect(app.url)
    if app.kind is AppKind.saml:
        from portal.sso.saml import idp_initiated_launch
        return idp_initiated_launch(app)
    if app.kind is AppKind.oidc:
        from portal.sso.oidc.views import start_third_party_login
        return start_third_party_login(app)
    abort(404)
