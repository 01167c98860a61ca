"""The roster already in the database, as plain tuples keyed by sourcedId.

Foreign keys are translated to the sourcedIds they point at, so that diff.py compares what the
bundle says with what the database holds without knowing any database ids.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Connection

from portal.models import District, Enrollment, Person, PersonSchool, School, Section

district_t = District.__table__
school_t = School.__table__
section_t = Section.__table__
person_t = Person.__table__
person_school_t = PersonSchool.__table__
enrollment_t = Enrollment.__table__


@dataclass
class State:
    """Existing rows: {sourcedId: (id, fields ...)}, with the fields in diff.py's order."""
    districts: dict[str, tuple] = field(default_factory=dict)  # id, name
    schools: dict[str, tuple] = field(default_factory=dict)    # id, district, name, identifier
    # id, school, title, class_code, course_title, grades
    sections: dict[str, tuple] = field(default_factory=dict)
    # id, role, district, username, given_name, family_name, email, student_number, grades, enabled
    people: dict[str, tuple] = field(default_factory=dict)
    person_schools: dict[str, frozenset] = field(default_factory=dict)  # person -> school sids
    enrollments: dict[str, tuple] = field(default_factory=dict)  # id, person, section, role, primary

    def rekey_people(self, rekeyed: dict[str, str]) -> None:
        """Give people new sourcedIds ({old: new}): their rows, schools and enrollments."""
        for old, new in rekeyed.items():
            self.people[new] = self.people.pop(old)
            if old in self.person_schools:
                self.person_schools[new] = self.person_schools.pop(old)
        for sid, row in self.enrollments.items():
            if row[1] in rekeyed:
                self.enrollments[sid] = (row[0], rekeyed[row[1]], *row[2:])

    def ids(self, kind: str) -> dict[str, int]:
        """{sourcedId: id} for one kind of row."""
        return {sid: row[0] for sid, row in getattr(self, kind).items()}


def load_state(conn: Connection) -> State:
    """Read the whole roster (one query per table)."""
    state = State()
    district_sid: dict[int, str] = {}
    for id_, sid, name in conn.execute(
            select(district_t.c.id, district_t.c.sourced_id, district_t.c.name)):
        state.districts[sid] = (id_, name)
        district_sid[id_] = sid

    school_sid: dict[int, str] = {}
    for id_, sid, district_id, name, identifier in conn.execute(select(
            school_t.c.id, school_t.c.sourced_id, school_t.c.district_id, school_t.c.name,
            school_t.c.identifier)):
        state.schools[sid] = (id_, district_sid.get(district_id), name, identifier)
        school_sid[id_] = sid

    section_sid: dict[int, str] = {}
    c = section_t.c
    for id_, sid, school_id, *rest in conn.execute(select(
            c.id, c.sourced_id, c.school_id, c.title, c.class_code, c.course_title, c.grades)):
        state.sections[sid] = (id_, school_sid[school_id], *rest)
        section_sid[id_] = sid

    person_sid: dict[int, str] = {}
    c = person_t.c
    for id_, sid, role, district_id, *rest in conn.execute(select(
            c.id, c.sourced_id, c.role, c.district_id, c.username, c.given_name, c.family_name,
            c.email, c.student_number, c.grades, c.enabled)).all():
        state.people[sid] = (id_, role.value, district_sid.get(district_id), *rest)
        person_sid[id_] = sid

    schools_of: dict[str, set] = defaultdict(set)
    for person_id, school_id in conn.execute(
            select(person_school_t.c.person_id, person_school_t.c.school_id)).all():
        schools_of[person_sid[person_id]].add(school_sid[school_id])
    state.person_schools = {sid: frozenset(s) for sid, s in schools_of.items()}

    c = enrollment_t.c
    for id_, sid, person_id, section_id, role, primary in conn.execute(select(
            c.id, c.sourced_id, c.person_id, c.section_id, c.role, c.primary)).all():
        state.enrollments[sid] = (id_, person_sid[person_id], section_sid[section_id], role,
                                  primary)
    return state
