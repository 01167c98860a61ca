"""Badge routes for teachers and admins: issue, void, unlock, status, reuse alerts (JSON).

Every change is a POST with CSRF (a form field, or the X-CSRFToken header for JSON). A person
the actor may not manage answers 403, the same as one that does not exist. The teacher pages
that call these belong to the teacher blueprint.
"""
from __future__ import annotations

import re
from datetime import timedelta

from flask import Blueprint, jsonify, request
from flask_login import current_user
from sqlalchemy import select

from portal.auth.roles import role_required
from portal.badges import flow
from portal.badges.expiry import TEMPORARY_MAX_HOURS, TEMPORARY_MIN_HOURS
from portal.badges.factors import factor_row, reset_factor, unlock_factor
from portal.badges.permissions import STAFF_ROLES, managed_students, may_manage_student
from portal.badges.services import (
    BadgeError, NotPermitted, issue_badge, void_badges_for_person, void_badges_for_school,
    void_badges_for_section,
)
from portal.db import db
from portal.errors import PortalError
from portal.models import Badge, Event, KioskDevice, Person, School, Section

bp = Blueprint("badges", __name__)

REUSE_DAYS = 30
_DIGITS = re.compile(r"[0-9]{1,9}")


def _form() -> dict:
    if not request.is_json:
        return request.form
    if not request.get_data():
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise PortalError("Send the fields as a JSON object", 'For example {"hours": 4}.')
    return body


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
    form = _form()
    hours = _temporary_hours(form)
    issued = issue_badge(db.session, flow.redis_client(), student, school=_school(form),
                         actor=current_user, temporary_hours=hours,
                         default_expires=flow.settings().badge_expires, clock=flow.app_clock())
    response = jsonify(token=issued.token, student=student.display_name,
                       **describe_badge(issued.badge))
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/badges/students/<int:person_id>/void")
@role_required(*STAFF_ROLES)
def void_student(person_id: int):
    student = _managed_student(person_id)
    count = void_badges_for_person(db.session, flow.redis_client(), student, actor=current_user,
                                   reason=str(_form().get("reason", "") or "voided"),
                                   clock=flow.app_clock())
    return jsonify(students=count)


@bp.post("/badges/sections/<int:section_id>/void")
@role_required(*STAFF_ROLES)
def void_section(section_id: int):
    count = void_badges_for_section(db.session, flow.redis_client(), _get(Section, section_id),
                                    actor=current_user, clock=flow.app_clock())
    return jsonify(students=count)


@bp.post("/badges/schools/<int:school_id>/void")
@role_required(*STAFF_ROLES)
def void_school(school_id: int):
    count = void_badges_for_school(db.session, flow.redis_client(), _get(School, school_id),
                                   actor=current_user, clock=flow.app_clock())
    return jsonify(students=count)


@bp.post("/badges/students/<int:person_id>/unlock")
@role_required(*STAFF_ROLES)
def unlock(person_id: int):
    """Let a student who got their PIN or pictures wrong too often try again."""
    unlock_factor(db.session, flow.limits().factor, _managed_student(person_id),
                  actor=current_user, clock=flow.app_clock())
    return jsonify(locked=False)


@bp.post("/badges/students/<int:person_id>/reset-factor")
@role_required(*STAFF_ROLES)
def reset(person_id: int):
    """Clear a student's PIN and pictures; they choose new ones at their next badge sign-in."""
    reset_factor(db.session, flow.limits().factor, _managed_student(person_id),
                 actor=current_user, clock=flow.app_clock())
    return jsonify(reset=True)


@bp.get("/badges/students/<int:person_id>")
@role_required(*STAFF_ROLES)
def status(person_id: int):
    """A student's badges (newest first) and whether their second factor is set or locked."""
    student = _managed_student(person_id)
    badges = db.session.scalars(select(Badge).where(Badge.person_id == student.id)
                                .order_by(Badge.issued_at.desc(), Badge.id.desc()).limit(20))
    row = factor_row(db.session, student)
    return jsonify(student=student.display_name, badges=[describe_badge(b) for b in badges],
                   pin_set=bool(row and row.pin_hash), pictures_set=bool(row and row.picture_hash),
                   locked=bool(row and row.locked_at))


@bp.get("/badges/reuse")
@role_required(*STAFF_ROLES)
def reuse():
    """Recent scans of voided badges of the actor's students: a lost card may be in other hands."""
    since = flow.now() - timedelta(days=REUSE_DAYS)
    rows = db.session.execute(
        select(Event, Person).join(Person, Person.id == Event.person_id)
        .where(Event.kind == "badge_voided_reuse", Event.at >= since,
               Event.person_id.in_(managed_students(current_user)))
        .order_by(Event.at.desc(), Event.id.desc()).limit(200))
    events = []
    for event, person in rows:
        data = event.data or {}
        device = db.session.get(KioskDevice, data["device_id"]) if data.get("device_id") else None
        events.append({"at": _when(event.at), "student_id": person.id,
                       "student": person.display_name, "badge_id": data.get("badge_id"),
                       "via": data.get("via"), "device": device.name if device else None})
    return jsonify(events=events)


from portal.badges import student_views  # noqa: E402,F401  (registers the student routes)
from portal.badges import scanner_views, sheet_views  # noqa: E402,F401  (the scanner page, sheets)
