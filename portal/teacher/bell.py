"""The bell: a teacher signs every student of a class out at once, everywhere (shared classroom
devices are left signed in otherwise, for the next class to find)."""
from __future__ import annotations

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import audit
from portal.badges.permissions import at_school, may_manage_section
from portal.errors import PortalError
from portal.models import Enrollment, Person, Role, Section
from portal.sessions import end_sessions_for


class NotYourClass(PortalError):
    status = 403
    title = "You can't sign out that class"
    advice = "Only its teachers and their school's admins can."


def sign_out_class(db: Session, client: redis.Redis, actor: Person, section: Section) -> tuple[int, int]:
    """End every session of the section's students; return (students, sessions ended). Raises
    NotYourClass, or redis.RedisError before anything ends when Redis is down."""
    if not may_manage_section(db, actor, section):
        raise NotYourClass()
    students = list(db.scalars(
        select(Enrollment.person_id).join(Person, Person.id == Enrollment.person_id)
        .where(Enrollment.section_id == section.id, Enrollment.role == "student",
               Person.role == Role.student, at_school(Person.id, section.school_id)).distinct()))
    client.ping()
    ended = sum(end_sessions_for(client, person_id) for person_id in students)
    audit.record("class_signed_out", actor=actor, data={
        "section_id": section.id, "students": len(students), "sessions": ended})
    return len(students), ended
