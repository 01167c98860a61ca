"""The teacher pages: /teacher/ (my classes, alerts of voided badges scanned again, and for a
school's admins its devices and badge policy) and /teacher/sections/<id> (a class's students and
their badges), with the routes only these pages use: a student's new password, the bell (sign the
class out), the badge policy.

Teachers see the classes they teach; school and district admins pick a school first. The other
forms post to the badge and device routes (portal.badges), which check the actor's right again
and come back here with a message.
"""
from __future__ import annotations

from datetime import timedelta

import redis
from flask import Blueprint, abort, current_app, render_template, request
from flask_login import current_user

from portal.addresses import portal_address
from portal.auth.passwords import MAX_LENGTH, WeakPassword
from portal.auth.roles import role_required
from portal.auth.services import LoginLimits
from portal.badges import flow
from portal.badges.expiry import TEMPORARY_MAX_HOURS, TEMPORARY_MIN_HOURS
from portal.badges.kiosks import list_devices
from portal.badges.policy import GRADES, PolicyChanged, PolicyError, policy_for, set_policy
from portal.badges.services import plan_section_badges
from portal.badges.signin import limited_until
from portal.badges.permissions import STAFF_ROLES, may_manage_school, may_manage_section
from portal.db import db, parse_id
from portal.errors import PortalError, as_sentence, refused_before_any_change
from portal.models import Person, Role, School, Section
from portal.teacher.bell import NotYourClass, sign_out_class
from portal.teacher.classes import REUSE_DAYS, class_rows, classes_for, recent_reuse, schools_for
from portal.teacher.forms import answer, back, back_link
from portal.teacher.passwords import NotYourStudent, reset_student_password

bp = Blueprint("teacher", __name__, url_prefix="/teacher")


def _since():
    return flow.now() - timedelta(days=REUSE_DAYS)


@bp.get("/")
@role_required(*STAFF_ROLES)
def classes():
    """A teacher's classes; for an admin, their schools, and the classes of the one chosen."""
    school = None
    if "school" in request.args:
        school_id = parse_id(request.args["school"])
        school = db.session.get(School, school_id) if school_id is not None else None
        if school is None or not may_manage_school(db.session, current_user, school):
            abort(403)
    schools = schools_for(db.session, current_user)
    if school is None and len(schools) == 1:
        school = schools[0]
    sections = classes_for(db.session, current_user, school)
    # A school here is one the actor manages (checked above, or from schools_for): its admin also
    # sees its classroom devices and its badge policy.
    devices = list_devices(db.session, school) if school is not None else None
    policy = policy_for(db.session, school.id) if school is not None else None
    return render_template("teacher/classes.html", sections=sections, schools=schools, school=school,
                           devices=devices, policy=policy, grades=GRADES,
                           is_teacher=current_user.role is Role.teacher,
                           alerts=recent_reuse(db.session, current_user, _since(), limit=20),
                           reuse_days=REUSE_DAYS, portal_address=portal_address())


@bp.get("/sections/<int:section_id>")
@role_required(*STAFF_ROLES)
def section(section_id: int):
    """A class: each student's badge, temporary badge and second factor, with what can be done."""
    found = db.session.get(Section, section_id)
    if found is None or not may_manage_section(db.session, current_user, found):
        abort(403)  # the same answer for a class that is not the actor's and for none at all
    now = flow.now()
    rows, policy = class_rows(db.session, found, now)
    # Cards the badge limit refused lately (scanned too often): when each works again.
    until = limited_until(flow.redis_client(), [b for r in rows for b in (r.card, r.temporary)])
    limited = {}
    for row in rows:
        for badge in (row.card, row.temporary):
            if badge is not None and badge.id in until:
                limited[row.person.id] = max(until[badge.id], limited.get(row.person.id, until[badge.id]))
    alerts = recent_reuse(db.session, current_user, _since(), person_ids=[r.person.id for r in rows])
    # The class sheet's students and their working cards, as the sheet itself will read them.
    plan = plan_section_badges(db.session, found, replace=True, clock=flow.app_clock())
    response = render_template(
        "teacher/section.html", section=found, rows=rows, policy=policy, alerts=alerts, now=now,
        reuse_days=REUSE_DAYS, hours=range(TEMPORARY_MIN_HOURS, TEMPORARY_MAX_HOURS + 1),
        uses_badges=any(r.uses_badge for r in rows), missing=plan.badge_students - len(plan.working_ids),
        working=len(plan.working_ids), cards=plan.fingerprint, password_max=MAX_LENGTH,
        limited=limited)
    return response, 200, {"Cache-Control": "no-store"}


class PasswordRefused(PortalError):
    title = "That password can't be used"


@bp.post("/students/<int:person_id>/password")
@role_required(*STAFF_ROLES)
def password(person_id: int):
    """Give a student a new password (the one typed, or one made for a young child to type) and
    show it once, to write down; the student's sessions end."""
    student = db.session.get(Person, person_id)
    if student is None:
        raise NotYourStudent()  # the same answer as a student who is not the actor's
    typed = request.form.get("password", "").strip()
    try:
        new = reset_student_password(db.session, flow.redis_client(), LoginLimits.for_app(),
                                     current_user, student, typed or None)
    except redis.RedisError as e:
        # Only before any change: a password committed is shown, with a note (new.note).
        raise refused_before_any_change(e, "No new password was set") from None
    except WeakPassword as e:
        refused = PasswordRefused(advice=f"{e} {e.advice}, or leave it empty for one made for you.")
        refused.back = back_link()     # the class page the form was on
        raise refused from None
    response = render_template("teacher/password.html", student=student, password=new.password,
                               note=new.note, back=back())
    # The portal's usual Referrer-Policy (same-origin), not no-referrer: over HTTPS a form posted
    # without a Referer is refused (Flask-WTF), and the header's Sign out is a form. The password
    # is in the page, never in its address, so a Referer carries nothing of it.
    return response, 200, {"Cache-Control": "no-store"}


@bp.post("/sections/<int:section_id>/sign-out")
@role_required(*STAFF_ROLES)
def sign_out(section_id: int):
    """The bell: every student of the class is signed out, on every device."""
    found = db.session.get(Section, section_id)
    if found is None:
        raise NotYourClass()  # the same answer as a class that is not the actor's
    students, sessions = sign_out_class(db.session, flow.redis_client(), current_user, found)
    return answer(f"{found.title}: everyone is signed out ({sessions} "
                  f"sign-in{'' if sessions == 1 else 's'} ended).", students=students, sessions=sessions)


class BadgePolicyRefused(PortalError):
    title = "That badge policy can't be used"


class BadgePolicyChanged(PortalError):
    status = 409
    title = "Someone changed this school's badge policy since you opened this page"


@bp.post("/schools/<int:school_id>/badge-policy")
@role_required(*STAFF_ROLES)
def badge_policy(school_id: int):
    """An admin of the school sets who uses badges, who adds a PIN or pictures, and the rest."""
    school = db.session.get(School, school_id)
    if school is None or not may_manage_school(db.session, current_user, school):
        abort(403)
    form = request.form
    default_expires = current_app.config["SETTINGS"].badge_expires
    try:
        changed = set_policy(
            db.session, school, grades=",".join(form.getlist("grades")),
            second_factor_grades=",".join(form.getlist("second_factor_grades")),
            factor=form.get("factor", ""), allow_browser_scanner=form.get("browser_scanner") == "yes",
            expires_on=form.get("expires", ""), scanner_networks=form.get("scanner_networks"),
            actor=current_user, clock=flow.app_clock(),
            # The policy the page showed. The form sends every setting, so one from an older page
            # would set back what was changed since; without it, a page older than this check.
            expect=form.get("expect", "not shown"))
    except PolicyChanged as e:
        refused = BadgePolicyChanged(advice=f"Nothing changed. It is now: {e.now.describe(default_expires)}. "
                                            "Go back to see it, and make your change again if you still mean it.")
        refused.back = (back(), "Back to the badge policy")
        raise refused from None
    except PolicyError as e:
        raise BadgePolicyRefused(advice=f"{as_sentence(str(e))} Nothing changed.") from None
    described = changed.describe(default_expires)
    return answer(f"{school.name}: {described}.", policy=described)
