"""District admin pages: the apps, who may launch each and which fields each receives, and what
was shared: the release records per app and per student (GET only; changes are made with
`portal apps ...` for now)."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, render_template, request
from flask_login import current_user
from sqlalchemy import select

from portal.access import FIELDS
from portal.admin.services import list_apps
from portal.admin.shared import find_person, releases_about, releases_to_app, use_since
from portal.auth.roles import role_required
from portal.badges import flow
from portal.db import db
from portal.models import App, Role

bp = Blueprint("admin", __name__, url_prefix="/admin")

USE_DAYS = 30


@bp.get("/")
@role_required(Role.district_admin)
def apps():
    """Every app: its kind, who may launch it, the fields it receives, its use in 30 days."""
    use = use_since(db.session, current_user.district_id, flow.now() - timedelta(days=USE_DAYS))
    return render_template("admin/apps.html", apps=list_apps(db.session), use=use, days=USE_DAYS,
                           fields=FIELDS)


@bp.get("/apps/<slug>")
@role_required(Role.district_admin)
def app(slug: str):
    """One app: what it receives, and its latest releases about the district's people."""
    found = db.session.scalar(select(App).where(App.slug == slug[:64]))
    if found is None:
        abort(404)
    releases = releases_to_app(db.session, current_user.district_id, found)
    return (render_template("admin/app.html", app=found, releases=releases, fields=FIELDS),
            200, {"Cache-Control": "no-store"})


@bp.get("/people")
@role_required(Role.district_admin)
def person():
    """What every app has received about one person of the district (by username)."""
    username = request.args.get("username", "")[:255].strip()
    found = find_person(db.session, current_user.district_id, username) if username else None
    summaries, releases = releases_about(db.session, found) if found is not None else ([], [])
    status = 404 if username and found is None else 200
    return (render_template("admin/person.html", username=username, person=found, summaries=summaries,
                            releases=releases, fields=FIELDS),
            status, {"Cache-Control": "no-store"})
