"""Small helpers that put roster rows in the test database."""
from __future__ import annotations

import itertools

from portal.auth.passwords import hash_password
from portal.db import db
from portal.models import District, Enrollment, Person, PersonSchool, Role, School, Section

_counter = itertools.count(1)
_HASHES: dict[str, str] = {}


def password_hash(password: str) -> str:
    # argon2 is slow on purpose; tests reuse one hash per distinct password.
    if password not in _HASHES:
        _HASHES[password] = hash_password(password)
    return _HASHES[password]


class RosterFactory:
    def __init__(self):
        self.district = District(sourced_id="d1", name="Riverside Unified")
        db.session.add(self.district)
        db.session.flush()

    def school(self, sourced_id=None, name="Maple Elementary") -> School:
        school = School(sourced_id=sourced_id or f"sch{next(_counter)}", name=name,
                        district_id=self.district.id, identifier="")
        db.session.add(school)
        db.session.flush()
        return school

    def section(self, school: School, sourced_id=None, title="Room 4", grades="02") -> Section:
        section = Section(sourced_id=sourced_id or f"sec{next(_counter)}", school_id=school.id,
                          title=title, grades=grades, class_code="", course_title="")
        db.session.add(section)
        db.session.flush()
        return section

    def person(self, username, *, role=Role.student, schools=(), sections=(), grades="02",
               password="correct horse battery", given="Ada", family="Lovelace",
               enabled=True) -> Person:
        person = Person(
            sourced_id=f"u{next(_counter)}", role=role, username=username.lower(),
            given_name=given, family_name=family, preferred_name="", email="",
            student_number="", grades=grades, enabled=enabled, district_id=self.district.id,
            password_hash=password_hash(password) if password else None,
        )
        db.session.add(person)
        db.session.flush()
        for school in schools:
            db.session.add(PersonSchool(person_id=person.id, school_id=school.id))
        for section in sections:
            db.session.add(Enrollment(sourced_id=f"e{next(_counter)}", person_id=person.id,
                                      section_id=section.id,
                                      role="student" if role is Role.student else "teacher"))
        db.session.commit()
        return person
