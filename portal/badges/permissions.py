"""Who may manage whose badges and which schools' kiosks. Every check is made on the server.

A teacher acts on the students of the sections they teach; a school admin on the students and
devices of their schools; a district admin on every school of their district.

A class is the teacher's, and its students theirs, only while the roster puts both the teacher
and the student at the class's school: an enrollment the roster left behind when either moved
to another school gives nothing (the roster import says when a teacher teaches at a school
their own row does not name).
"""
from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from portal.models import Enrollment, Person, PersonSchool, Role, School, Section
from portal.models.roster import at_school

# OneRoster enrollment roles that make someone the teacher of a section's students.
TEACHING_ROLES = ("teacher",)
STAFF_ROLES = (Role.teacher, Role.school_admin, Role.district_admin)


def _school_ids(db: Session, person: Person) -> set[int]:
    return set(db.scalars(select(PersonSchool.school_id).where(PersonSchool.person_id == person.id)))


def may_manage_school(db: Session, actor: Person, school: School) -> bool:
    """School admins of the school and district admins of its district."""
    if not actor.active:
        return False
    if actor.role is Role.district_admin:
        return actor.district_id is not None and school.district_id == actor.district_id
    if actor.role is Role.school_admin:
        return school.id in _school_ids(db, actor)
    return False


def may_pair_for_school(db: Session, actor: Person, school: School) -> bool:
    """Admins of the school, and teachers who belong to it."""
    if may_manage_school(db, actor, school):
        return True
    if not actor.active or actor.role is not Role.teacher:
        return False
    return school.id in _school_ids(db, actor)


def teaches_section(db: Session, actor: Person, section: Section) -> bool:
    return bool(db.scalar(select(exists().where(
        Enrollment.person_id == actor.id, Enrollment.section_id == section.id,
        Enrollment.role.in_(TEACHING_ROLES), at_school(actor.id, section.school_id)))))


def _teaches_student(actor: Person, student: Person, school_id=None):
    """SQL: `actor` teaches a class `student` is in, both of them at its school (at `school_id`
    only, when given)."""
    query = _taught(actor, Enrollment.person_id).where(Enrollment.person_id == student.id)
    if school_id is not None:
        query = query.where(Section.school_id == school_id)
    return query.exists()


def may_manage_section(db: Session, actor: Person, section: Section) -> bool:
    """The section's teachers and the admins of its school."""
    if not actor.active:
        return False
    if actor.role is Role.teacher:
        return teaches_section(db, actor, section)
    return may_manage_school(db, actor, section.school)


def may_manage_student(db: Session, actor: Person, student: Person) -> bool:
    """A teacher of one of the student's sections (at a school the student is at), or an admin
    of one of the student's schools."""
    if not actor.active or student.role is not Role.student or actor.id == student.id:
        return False
    if actor.role is Role.teacher:
        return bool(db.scalar(select(_teaches_student(actor, student))))
    if actor.role in (Role.school_admin, Role.district_admin):
        schools = db.scalars(select(School).join(PersonSchool, PersonSchool.school_id == School.id)
                             .where(PersonSchool.person_id == student.id))
        return any(may_manage_school(db, actor, school) for school in schools)
    return False


def may_manage_student_at(db: Session, actor: Person, student: Person, school: School) -> bool:
    """What is `student`'s at `school` (their card there, its scans): a teacher of one of the
    student's classes at that school, or an admin of the school. A teacher at two schools acts
    on a student's card only where they teach the student: the other school's card is its
    staff's."""
    if not actor.active or student.role is not Role.student or actor.id == student.id:
        return False
    if actor.role is Role.teacher:
        return bool(db.scalar(select(_teaches_student(actor, student, school.id))))
    return may_manage_school(db, actor, school)


def managed_students(actor: Person):
    """A query of the ids of the students `actor` may manage (for listings)."""
    if actor.role is Role.teacher:
        return _taught(actor, Enrollment.person_id)
    if actor.role is Role.school_admin:
        admin_schools = select(PersonSchool.school_id).where(PersonSchool.person_id == actor.id)
        return (select(PersonSchool.person_id).join(Person, Person.id == PersonSchool.person_id)
                .where(PersonSchool.school_id.in_(admin_schools), Person.role == Role.student))
    if actor.role is Role.district_admin and actor.district_id is not None:
        district_schools = select(School.id).where(School.district_id == actor.district_id)
        return (select(PersonSchool.person_id).join(Person, Person.id == PersonSchool.person_id)
                .where(PersonSchool.school_id.in_(district_schools), Person.role == Role.student))
    return select(Person.id).where(Person.id.is_(None))


def manages_student(actor: Person, person_id):
    """SQL: the student `person_id` (a column of the rows sought) is one `actor` may manage, as
    managed_students lists them. For rows that are few beside the students (the scans of voided
    badges: portal.teacher.classes.recent_reuse), so the database starts from those rows: a
    district admin's is a check of each row (EXISTS), not the list of every student of the
    district, which SQLite would read first and then seek the rows of each student by one."""
    if actor.role is Role.district_admin and actor.district_id is not None:
        student = aliased(Person)
        return (exists().where(PersonSchool.person_id == person_id, School.id == PersonSchool.school_id,
                               School.district_id == actor.district_id)
                & exists().where(student.id == person_id, student.role == Role.student))
    return person_id.in_(managed_students(actor))


def _taught(actor: Person, *columns):
    """A query of `columns` (of the students' Enrollment and of Section) over the classes a
    teacher teaches and their students, both at the class's school."""
    mine = aliased(Enrollment)
    return (select(*columns)
            .join(mine, mine.section_id == Enrollment.section_id)
            .join(Section, Section.id == mine.section_id)
            .where(mine.person_id == actor.id, mine.role.in_(TEACHING_ROLES),
                   Enrollment.role == "student", at_school(Enrollment.person_id, Section.school_id),
                   at_school(actor.id, Section.school_id)))


def taught_where(db: Session, actor: Person, student_ids) -> set[tuple[int, int]]:
    """(student id, school id) for each of these students and each school where the teacher
    `actor` teaches them (may_manage_student_at, for many students in one statement)."""
    ids = list(student_ids)
    if not ids or actor.role is not Role.teacher or not actor.active:
        return set()
    return set(map(tuple, db.execute(_taught(actor, Enrollment.person_id, Section.school_id)
                                     .where(Enrollment.person_id.in_(ids)).distinct()).all()))
