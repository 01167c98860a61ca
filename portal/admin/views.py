"""District admin pages: the apps, who may launch each and which fields each receives (and the
forms that change those two, as `portal apps grant/ungrant/release` do), what was shared: the
release records per app and per person, and the requests to delete it (portal.admin.deletions)."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.access import FIELDS, apps_for
from portal.admin import deletions, holds, optouts
from portal.admin.imports import latest_imports
from portal.admin.services import (
    AdminError, grant_app, grant_mark, grants_of_district, list_apps, receives, release_fields,
    remove_grant, shown_fields,
)
from portal.admin.shared import (
    EVENT_WORDS, USE_MAX_AGE, audit_log, find_person, recent_use, releases_about, releases_to_app,
    username_sought,
)
from portal.auth.roles import role_required
from portal.badges import flow
from portal.db import db
from portal.errors import as_sentence
from portal.local_time import local
from portal.models import App, AppKind, District, Person, Role, School
from portal.roster.parse import GRADES
from portal.names import by_word

bp = Blueprint("admin", __name__, url_prefix="/admin")

USE_DAYS = 30


@bp.get("/")
@role_required(Role.district_admin)
def apps():
    """Every app: its kind, who may launch it, the fields it receives, its use in 30 days (as
    counted at most USE_MAX_AGE ago: the page says when); and above them, the roster's latest
    import, and whether the latest attempt was refused."""
    use = recent_use(db.session, flow.redis_client(), current_user.district_id, flow.now(), USE_DAYS)
    found = list_apps(db.session)
    # One look at the roster's districts for every app's grants, not one per app.
    mine = {g.id for g in grants_of_district(db.session, [g for a in found for g in a.grants],
                                              current_user.district_id)}
    grants = {a.id: [g for g in a.grants if g.id in mine] for a in found}
    return render_template("admin/apps.html", apps=found, grants=grants, use=use.apps, as_of=use.as_of,
                           days=USE_DAYS, every_minutes=int(USE_MAX_AGE.total_seconds() // 60),
                           fields=FIELDS, held=holds.held_people(db.session, current_user.district_id),
                           imports=latest_imports(db.session, current_user.district_id))


def _app(slug: str) -> App:
    found = db.session.scalar(select(App).where(App.slug == slug[:64]))
    if found is None:
        abort(404)
    return found


@bp.get("/apps/<slug>")
@role_required(Role.district_admin)
def app(slug: str):
    """One app: what it receives and who may open it (with the forms that change them), and its
    latest releases about the district's people."""
    found = _app(slug)
    releases = releases_to_app(db.session, current_user.district_id, found)
    schools = by_word(db.session.scalars(select(School).where(School.district_id == current_user.district_id)))
    grades = list(dict.fromkeys(GRADES.values()))  # the roster's order: IT, PR, PK, TK, KG, 01 ...
    asked = deletions.requests_page(db.session, current_user.district_id, app=found)
    opted_out = optouts.opted_out_people(db.session, current_user.district_id, found)
    grants = grants_of_district(db.session, found.grants, current_user.district_id)
    return (render_template("admin/app.html", app=found, grants=grants, releases=releases, fields=FIELDS,
                            schools=list(schools), grades=grades, roles=list(Role), asked=asked,
                            opted_out=opted_out, shown=shown_fields(found),
                            marks={g.id: grant_mark(g) for g in grants}),
            200, {"Cache-Control": "no-store"})


def _back_to(found: App):
    return redirect(url_for("admin.app", slug=found.slug), 303)


def _answer(change, done, back):
    """Make `change()`; then say `done(its result)`, or in plain words why nothing changed; and
    answer `back` (the page the form was on)."""
    try:
        result = change()
    except AdminError as e:
        flash(as_sentence(str(e)), "problem")
    else:
        flash(done(result))
    return back


def _change(found: App, change, done):
    """_answer, going back to the app's page."""
    return _answer(change, done, _back_to(found))


@bp.post("/apps/<slug>/release")
@role_required(Role.district_admin)
def release(slug: str):
    """Set the fields the app receives to the boxes ticked (the subject always goes)."""
    found = _app(slug)
    # What the page showed it receives. A form without it is from a page older than this check,
    # which may be as out of date as any: refused as one.
    shown = request.form.get("expect", "not shown")
    return _change(found, lambda: release_fields(db.session, found.name, request.form.getlist("field"),
                                                 actor=current_user, expect=shown),
                   lambda changed: f"{changed.name} now receives: {receives(changed)}.")


@bp.post("/apps/<slug>/grants")
@role_required(Role.district_admin)
def add_grant(slug: str):
    """Let one more group open the app; every choice made must hold for a person."""
    found = _app(slug)
    form = request.form
    chosen = {name: form.get(name, "").strip() or None for name in ("school", "grade", "section", "role")}
    district = form.get("district") == "yes"
    if not district and not any(chosen.values()):
        flash("Choose who gets the app: the whole district, a school, a grade, a class or a role.", "problem")
        return _back_to(found)
    return _change(found, lambda: grant_app(db.session, found.name, district=district, actor=current_user,
                                            **chosen),
                   lambda grant: f"{found.name} is now granted to: {grant.describe()}.")


@bp.post("/apps/<slug>/grants/<int:grant_id>/remove")
@role_required(Role.district_admin)
def drop_grant(slug: str, grant_id: int):
    """Stop one group opening the app."""
    found = _app(slug)
    # The group the page showed with this button (a form without it: a page older than the check).
    shown = request.form.get("expect", "not shown")
    return _change(found, lambda: remove_grant(db.session, found.name, grant_id=grant_id, actor=current_user,
                                               expect=shown),
                   lambda covered: f"{found.name} is no longer granted to: {covered}.")


@bp.get("/people")
@role_required(Role.district_admin)
def person():
    """What every app has received about one person of the district (by username)."""
    username = request.args.get("username", "")[:255].strip()
    found = find_person(db.session, current_user.district_id, username) if username else None
    summaries, releases = releases_about(db.session, found) if found is not None else ([], [])
    asked, opened, opted_out, since = {}, [], [], {}
    if found is not None:
        for r in deletions.requests_of(db.session, current_user.district_id, person=found):
            asked.setdefault(r.app_id, r)  # open ones first, then the newest
        opened, opted_out = apps_for(db.session, found), optouts.opted_out_apps(db.session, found)
        since = deletions.released_since(db.session, asked.values())
    status = 404 if username and found is None else 200
    return (render_template("admin/person.html", username=username, person=found, summaries=summaries,
                            releases=releases, fields=FIELDS, asked=asked, opened=opened,
                            opted_out=opted_out, since=since),
            status, {"Cache-Control": "no-store"})


def _person_and_app(person_id: int, *, removed: bool = False):
    """The district's person by id (else 404), the app the form names (or None), and the way
    back to the person's page. A removed app only with `removed` (as services.find_app): its
    vendor may still be asked to delete, but no one is opted out of it or back in."""
    found = _district_person(person_id)
    target = db.session.scalar(select(App).where(App.slug == request.form.get("app", "")[:64]))
    if target is None:
        flash("That app is not registered (it may have been removed): nothing changed.", "problem")
    elif target.removed_at is not None and not removed:
        flash(f"{target.name} was removed: nothing changed.", "problem")
        target = None
    return found, target, _to_person(found)


def _district_person(person_id: int) -> Person:
    found = db.session.scalar(select(Person).where(Person.id == person_id,
                                                   Person.district_id == current_user.district_id))
    if found is None:
        abort(404)
    return found


def _to_person(found: Person):
    return redirect(url_for("admin.person", username=found.username), 303)


@bp.post("/people/<int:person_id>/hold")
@role_required(Role.district_admin)
def hold(person_id: int):
    """Put the person's account on hold: no sign-in, no session, no app, until it is lifted."""
    found = _district_person(person_id)
    return _answer(lambda: holds.place_hold(db.session, current_app.extensions["redis"], found,
                                            actor=current_user, reason=request.form.get("reason", ""),
                                            now=flow.now()),
                   lambda ended: f"{found.display_name}'s account is on hold: they cannot sign in or open "
                                 f"an app" + (f", and {ended} session{'s' if ended != 1 else ''} ended."
                                              if ended else "."),
                   _to_person(found))


@bp.post("/people/<int:person_id>/unhold")
@role_required(Role.district_admin)
def unhold(person_id: int):
    """Lift the hold: they sign in again with the password or badge they had."""
    found = _district_person(person_id)
    return _answer(lambda: holds.lift_hold(db.session, current_app.extensions["redis"], found,
                                           actor=current_user),
                   lambda _: f"The hold on {found.display_name}'s account is lifted.", _to_person(found))


@bp.post("/people/<int:person_id>/opt-out")
@role_required(Role.district_admin)
def opt_out(person_id: int):
    """Keep the person from the app the form names, whatever the grants say."""
    found, target, back = _person_and_app(person_id)
    if target is not None:
        optouts.opt_out(db.session, found, target, actor=current_user, now=flow.now(),
                        client=flow.redis_client())
        flash(f"{found.display_name} is opted out of {target.name}: it is off their tiles and will "
              f"not open for them.")
    return back


@bp.post("/people/<int:person_id>/opt-in")
@role_required(Role.district_admin)
def opt_in(person_id: int):
    """Let the grants decide again whether the person may open the app."""
    found, target, back = _person_and_app(person_id)
    if target is not None:
        optouts.opt_in(db.session, found, target, actor=current_user)
        flash(f"{found.display_name} is no longer opted out of {target.name}.")
    return back


@bp.post("/people/<int:person_id>/deletions")
@role_required(Role.district_admin)
def ask_deletion(person_id: int):
    """Ask the app named in the form to delete what it received about the person."""
    found, target, back = _person_and_app(person_id, removed=True)
    if target is None:
        return back
    try:
        asked, created = deletions.ask_deletion(
            db.session, flow.redis_client(), found, target, actor=current_user,
            pairwise_key=current_app.config["SETTINGS"].pairwise_key, now=flow.now())
    except AdminError as e:
        flash(as_sentence(str(e)), "problem")
        return back
    ended = (f" {target.name}'s sign-ins for {found.display_name} have ended: nothing it was given before "
             f"can read their data again." if target.kind is AppKind.oidc and target.removed_at is None else "")
    flash((f"Request made. Send {target.name}'s vendor the letter below." if created else
           f"{target.name} was already asked on {local(asked.asked_at):%b %-d, %Y}; the letter below now "
           f"covers everything it has received.") + ended)
    return redirect(url_for("admin.deletion", request_id=asked.id), 303)


@bp.get("/deletions")
@role_required(Role.district_admin)
def deletion_list():
    """The district's deletion requests (to one app, with ?app=; those waiting for the vendor
    only, with ?open=1), newest first, a page at a time: ?before=ID the page after request ID."""
    to_app = _app(request.args["app"]) if "app" in request.args else None
    open_only = request.args.get("open") == "1"
    before = _request(request.args.get("before", -1, type=int)) if "before" in request.args else None
    page = deletions.requests_page(db.session, current_user.district_id, app=to_app, open_only=open_only,
                                   before=before)
    return (render_template("admin/deletions.html", page=page, to_app=to_app, open_only=open_only,
                            before=before),
            200, {"Cache-Control": "no-store"})


def _request(request_id: int):
    found = (deletions.find_request(db.session, current_user.district_id, request_id)
             if 0 < request_id < 2**63 else None)
    if found is None:
        abort(404)
    return found


@bp.get("/deletions/<int:request_id>")
@role_required(Role.district_admin)
def deletion(request_id: int):
    """One request: the letter to send the vendor, and the form to record its answer."""
    found = _request(request_id)
    opted_out = (found.person is not None and found.app is not None
                 and optouts.is_opted_out(db.session, found.person, found.app))
    return (render_template("admin/deletion.html", r=found, identifiers=deletions.identifiers(
                                db.session, found, pairwise_key=current_app.config["SETTINGS"].pairwise_key),
                            district=db.session.get(District, found.district_id),
                            since=deletions.released_since(db.session, [found]).get(found.id),
                            opted_out=opted_out),
            200, {"Cache-Control": "no-store"})


@bp.post("/deletions/<int:request_id>/done")
@role_required(Role.district_admin)
def deletion_done(request_id: int):
    """Record that the vendor confirmed the deletion."""
    found = _request(request_id)

    def done(_):
        if not deletions.released_since(db.session, [found]):
            return f"Recorded: {found.app_name} has deleted what it received."
        return (f"Recorded: {found.app_name} has deleted what the letter covers. It received data about "
                f"this student again after the request was made, which this does not cover: see below.")
    return _answer(lambda: deletions.confirm_deletion(db.session, found, actor=current_user,
                                                      note=request.form.get("note", ""), now=flow.now()),
                   done, redirect(url_for("admin.deletion", request_id=found.id), 303))


@bp.get("/log")
@role_required(Role.district_admin)
def log():
    """The audit log: the latest 200 events of the district, of one kind or one person."""
    kind = request.args.get("kind", "")
    if kind and kind not in EVENT_WORDS:
        kind = ""
    username = request.args.get("username", "")[:255].strip()
    found = find_person(db.session, current_user.district_id, username) if username else None
    # No one of that name now: a staff member the roster removed, by what they did before.
    removed = username_sought(username) if found is None and username else None
    lines = (audit_log(db.session, current_user.district_id, kind=kind or None, person=found, removed=removed)
             if found is not None or removed or not username else [])
    # Someone the roster removed has events here (of any kind: the log may be showing one).
    gone = removed is not None and bool(
        lines or (kind and audit_log(db.session, current_user.district_id, removed=removed, limit=1)))
    return (render_template("admin/log.html", lines=lines, kinds=EVENT_WORDS, kind=kind, username=username,
                            person=found, removed=gone),
            404 if username and found is None and not gone else 200, {"Cache-Control": "no-store"})
