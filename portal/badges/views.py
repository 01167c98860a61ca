"""Badge routes for teachers and admins: issue, void, unlock, status, reuse alerts.

Every change is a POST with CSRF (a form field, or the X-CSRFToken header for JSON). A person
the actor may not manage answers 403, the same as one that does not exist. A script (JSON in,
or asking for JSON) gets JSON; a form on the teacher pages (portal.teacher) is sent back to the
page it came from with a message, and a badge it issues comes back as a one-label PDF to print.

A student's issue and void take `expect`: the ids of the student's working badges that the
press may stop, as the page showed them ("none", "12" or "12,15"; from JSON also a list of ids).
When another badge works now (printed in another tab, or by someone else), nothing changes:
409. A caller that sends no `expect` (a script, as before) is not checked.
"""
from __future__ import annotations

import re
from datetime import timedelta

import redis
from flask import Blueprint, jsonify, make_response, request
from flask_login import current_user
from sqlalchemy import select

from portal.auth.roles import role_required
from portal.badges import flow, plural
from portal.badges.expiry import TEMPORARY_MAX_HOURS, TEMPORARY_MIN_HOURS
from portal.badges.factors import factor_row, reset_factor, unlock_factor
from portal.badges.permissions import STAFF_ROLES, may_manage_student
from portal.badges.services import (
    BadgeError, CardChanged, NotPermitted, badge_schools_of, issue_badge, void_badges_for_person,
    void_badges_for_school, void_badges_for_section,
)
from portal.badges.sheets import (
    PAPERS, SheetBadge, badge_name, check_fonts, inline_pdf, render_sheet, temporary_note,
)
from portal.db import db
from portal.errors import PortalError, refused_before_any_change, wants_json
from portal.models import Badge, KioskDevice, Person, School, Section
from portal.teacher.classes import REUSE_DAYS, recent_reuse
from portal.teacher.forms import answer, back_link

bp = Blueprint("badges", __name__)

_DIGITS = re.compile(r"[0-9]{1,9}")


def _managed_student(person_id: int) -> Person:
    student = db.session.get(Person, person_id)
    if student is None or not may_manage_student(db.session, current_user, student):
        raise NotPermitted()
    return student


def _get(model, ident: int):
    found = db.session.get(model, ident)
    if found is None:
        raise NotPermitted()
    return found


def _whole_number(form, name: str, error: PortalError) -> int:
    """The form's `name` as a plain whole number (ASCII digits, or a JSON integer), else `error`."""
    value = form.get(name)
    text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not _DIGITS.fullmatch(text):
        raise error
    return int(text)


def _temporary_hours(form) -> int | None:
    """The hours of a temporary badge; None (a new permanent card) only when no `hours` are sent."""
    if "hours" not in form:
        return None
    # Reading bad hours as "none" would issue a permanent card and void the one in the pocket.
    wrong = BadgeError("A temporary badge lasts 1 to 12 hours",
                       "Send the hours as a whole number from 1 to 12, or none for a new card.")
    hours = _whole_number(form, "hours", wrong)
    if not TEMPORARY_MIN_HOURS <= hours <= TEMPORARY_MAX_HOURS:
        raise wrong
    return hours


def _expected(form) -> frozenset[int] | None:
    """The ids of the badges the pressing page showed (`expect`, see above); None when not sent."""
    value = form.get("expect")
    if value is None:
        return None
    if value == "none":
        return frozenset()
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else [value]
    wrong = BadgeError("That page's badges can't be read", "Reload the page and try again.")
    return frozenset(_whole_number({"id": item}, "id", wrong) for item in items)


def _school(form) -> School | None:
    """The school named in the form; None (the student's own) when none is named."""
    if "school" not in form:
        return None
    return _get(School, _whole_number(form, "school", BadgeError(
        "That school number isn't right", "Send the school's number, or leave it out.")))


def _when(value):
    return value.isoformat() if value else None


def describe_badge(badge: Badge) -> dict:
    device = db.session.get(KioskDevice, badge.last_used_device_id) if badge.last_used_device_id else None
    return {"id": badge.id, "kind": badge.kind.value, "school_id": badge.school_id,
            "issued_at": _when(badge.issued_at), "expires_at": _when(badge.expires_at),
            "revoked_at": _when(badge.revoked_at), "revoked_reason": badge.revoked_reason,
            "last_used_at": _when(badge.last_used_at),
            "last_used_on": device.name if device else None}


@bp.post("/badges/students/<int:person_id>/issue")
@role_required(*STAFF_ROLES)
def issue(person_id: int):
    """Issue a badge (temporary with `hours`); the token is in this answer and nowhere else."""
    student = _managed_student(person_id)
    form = flow.posted_fields('{"hours": 4}')
    hours = _temporary_hours(form)
    paper = str(form.get("paper", "") or "letter").lower()
    if not wants_json():  # a label to print: the paper and the fonts must do before any change
        if paper not in PAPERS:
            raise BadgeError("Choose letter or A4 paper")
        check_fonts()
    try:
        issued = issue_badge(db.session, flow.redis_client(), student, school=_school(form),
                             actor=current_user, temporary_hours=hours,
                             default_expires=flow.settings().badge_expires,
                             zone=flow.settings().zone, clock=flow.app_clock(),
                             expect=_expected(form))
    except redis.RedisError as e:
        # Only before any change: once the badge is committed it is handed out (issued.note).
        raise refused_before_any_change(e, "No badge was made") from None
    except CardChanged as e:
        e.back = back_link()
        raise
    if wants_json():
        # `note` only when Redis failed after the commit (see services.finished).
        noted = {"note": issued.note} if issued.note else {}
        response = jsonify(token=issued.token, student=student.display_name,
                           **describe_badge(issued.badge), **noted)
        response.status_code = 201
    else:
        # A teacher's form: the badge to print now, on the first label of a sheet (with, in its
        # top margin, what the teacher must hear: the answer is the PDF, and a message kept in
        # the session for the class page would be lost with the session store that failed).
        badge = issued.badge
        note = temporary_note(badge.expires_at, badge.issued_at, flow.settings().zone) if hours else ""
        label = SheetBadge(issued.token, badge_name(student), badge.school.name, note)
        response = make_response(render_sheet([label], paper, note=issued.note), 201)
        response.headers["Content-Type"] = "application/pdf"
        kind = "temporary-badge" if hours else "badge"
        response.headers["Content-Disposition"] = inline_pdf(f"{kind} {badge_name(student)}",
                                                             f"{kind}-{student.id}.pdf")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/badges/students/<int:person_id>/void")
@role_required(*STAFF_ROLES)
def void_student(person_id: int):
    student = _managed_student(person_id)
    form = flow.posted_fields('{"reason": "lost"}')
    reason = str(form.get("reason", "") or "voided")
    # A school's card only (`school`), else every card at the schools the actor looks after.
    try:
        count = void_badges_for_person(db.session, flow.redis_client(), student,
                                       school=_school(form), actor=current_user, reason=reason,
                                       clock=flow.app_clock(), expect=_expected(form))
    except CardChanged as e:
        e.back = back_link()
        raise
    done = (f"{student.display_name}'s badge no longer works." if count
            else f"{student.display_name} had no badge that works.")
    return answer(done, students=count)


@bp.post("/badges/sections/<int:section_id>/void")
@role_required(*STAFF_ROLES)
def void_section(section_id: int):
    section = _get(Section, section_id)
    if not wants_json() and request.form.get("confirm") != "yes":
        raise BadgeError("Nothing was voided", "Tick the box to say you mean every card of the class.")
    count = void_badges_for_section(db.session, flow.redis_client(), section,
                                    actor=current_user, clock=flow.app_clock())
    return answer(f"{section.title}: the badges of {plural(count, 'student', 'students')} "
                   "no longer work.", students=count)


@bp.post("/badges/schools/<int:school_id>/void")
@role_required(*STAFF_ROLES)
def void_school(school_id: int):
    school = _get(School, school_id)
    count = void_badges_for_school(db.session, flow.redis_client(), school,
                                   actor=current_user, clock=flow.app_clock())
    return answer(f"{school.name}: the badges of {plural(count, 'student', 'students')} "
                   "no longer work.", students=count)


@bp.post("/badges/students/<int:person_id>/unlock")
@role_required(*STAFF_ROLES)
def unlock(person_id: int):
    """Let a student who got their PIN or pictures wrong too often try again."""
    student = _managed_student(person_id)
    unlock_factor(db.session, flow.limits().factor, student, actor=current_user, clock=flow.app_clock())
    return answer(f"{student.display_name} can try again.", locked=False)


@bp.post("/badges/students/<int:person_id>/reset-factor")
@role_required(*STAFF_ROLES)
def reset(person_id: int):
    """Clear a student's PIN and pictures; they choose new ones at their next badge sign-in."""
    student = _managed_student(person_id)
    reset_factor(db.session, flow.limits().factor, student, actor=current_user, clock=flow.app_clock())
    return answer(f"{student.display_name} will choose a new one at their next badge sign-in.",
                   reset=True)


@bp.get("/badges/students/<int:person_id>")
@role_required(*STAFF_ROLES)
def status(person_id: int):
    """A student's badges (newest first) at the schools the actor looks after, and whether their
    second factor is set or locked."""
    student = _managed_student(person_id)
    schools = badge_schools_of(db.session, current_user, student)
    badges = db.session.scalars(select(Badge).where(Badge.person_id == student.id,
                                                    Badge.school_id.in_(schools))
                                .order_by(Badge.issued_at.desc(), Badge.id.desc()).limit(20))
    row = factor_row(db.session, student)
    return jsonify(student=student.display_name, badges=[describe_badge(b) for b in badges],
                   pin_set=bool(row and row.pin_hash), pictures_set=bool(row and row.picture_hash),
                   locked=bool(row and row.locked_at))


@bp.get("/badges/reuse")
@role_required(*STAFF_ROLES)
def reuse():
    """Recent scans of voided badges of the actor's students: a lost card may be in other hands."""
    alerts = recent_reuse(db.session, current_user, flow.now() - timedelta(days=REUSE_DAYS))
    return jsonify(events=[{"at": _when(a.at), "student_id": a.student.id, "student": a.student.display_name,
                            "badge_id": a.badge_id, "via": a.via, "device": a.device} for a in alerts])


from portal.badges import student_views  # noqa: E402,F401  (registers the student routes)
from portal.badges import scanner_views, sheet_views  # noqa: E402,F401  (the scanner page, sheets)
