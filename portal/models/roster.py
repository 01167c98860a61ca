"""The roster: who is in the district, in which schools and sections."""
from __future__ import annotations

import enum
import unicodedata
from datetime import datetime

from sqlalchemy import (
    Boolean, Enum, ForeignKey, Index, String, exists,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base
from portal.models.types import UTCDateTime


class Role(str, enum.Enum):
    student = "student"
    teacher = "teacher"
    school_admin = "school_admin"
    district_admin = "district_admin"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


ROLE_ENUM = Enum(Role, name="person_role", native_enum=False, length=20,
                 values_callable=lambda e: [m.value for m in e])


# Joiners that Persian and Indic keyboards type inside words: not printable to Python, but text.
_JOINERS = str.maketrans("", "", "\u200c\u200d")


def typeable_username(text: str) -> bool:
    """True when every character of `text` can be typed at a sign-in page: no control,
    separator, no-break or zero-width space or direction mark (the two joiners are letters'
    business, and pass)."""
    return text.translate(_JOINERS).isprintable()


def canonical_username(text: str) -> str:
    """A username as stored and looked up: lower case, composed (NFC). "José" typed on a keyboard
    and "Jose" + combining acute from an export are then one name, not two accounts."""
    return unicodedata.normalize("NFC", text.lower())


class District(Base):
    __tablename__ = "district"
    __table_args__ = {"sqlite_autoincrement": True}   # ids never reused (migration 0007)

    id: Mapped[int] = mapped_column(primary_key=True)
    sourced_id: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255))

    schools: Mapped[list["School"]] = relationship(back_populates="district")


class School(Base):
    __tablename__ = "school"
    __table_args__ = (
        # Every foreign key has an index (see Badge; migration 0023).
        Index("ix_school_district", "district_id"),
        {"sqlite_autoincrement": True},   # ids never reused (migration 0007)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sourced_id: Mapped[str] = mapped_column(String(255), unique=True)
    district_id: Mapped[int | None] = mapped_column(ForeignKey("district.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(255))
    identifier: Mapped[str] = mapped_column(String(255), default="")

    district: Mapped[District | None] = relationship(back_populates="schools")


class Section(Base):
    __tablename__ = "section"
    __table_args__ = {"sqlite_autoincrement": True}   # ids never reused (migration 0007)

    id: Mapped[int] = mapped_column(primary_key=True)
    sourced_id: Mapped[str] = mapped_column(String(255), unique=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(255))
    class_code: Mapped[str] = mapped_column(String(255), default="")
    course_title: Mapped[str] = mapped_column(String(255), default="")
    grades: Mapped[str] = mapped_column(String(255), default="")  # comma separated, OneRoster codes

    school: Mapped[School] = relationship()


class Person(Base):
    __tablename__ = "person"
    __table_args__ = {"sqlite_autoincrement": True}   # ids never reused (migration 0007)

    id: Mapped[int] = mapped_column(primary_key=True)
    sourced_id: Mapped[str] = mapped_column(String(255), unique=True)
    # What the person's pairwise subjects are made from when it is not the sourcedId: the
    # sourcedId they had before the roster re-keyed them (migration 0020). NULL for most.
    subject_seed: Mapped[str | None] = mapped_column(String(255), nullable=True)
    role: Mapped[Role] = mapped_column(ROLE_ENUM)
    district_id: Mapped[int | None] = mapped_column(
        ForeignKey("district.id", ondelete="SET NULL"), index=True)
    username: Mapped[str] = mapped_column(String(255), unique=True)
    given_name: Mapped[str] = mapped_column(String(255))
    family_name: Mapped[str] = mapped_column(String(255))
    preferred_name: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str] = mapped_column(String(255), default="")
    student_number: Mapped[str] = mapped_column(String(255), default="")
    grades: Mapped[str] = mapped_column(String(255), default="")  # comma separated, OneRoster codes
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A security hold (portal.admin.holds): set by a district admin, never by the roster import.
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    hold_reason: Mapped[str] = mapped_column(String(200), default="", server_default="")

    schools: Mapped[list[School]] = relationship(secondary="person_school", viewonly=True)

    @property
    def display_name(self) -> str:
        return f"{self.preferred_name or self.given_name} {self.family_name}".strip()

    @property
    def grade_list(self) -> list[str]:
        return [g for g in self.grades.split(",") if g]

    @property
    def active(self) -> bool:
        """May use the portal: enrolled (the roster) and not on hold (an admin)."""
        return self.enabled and self.held_at is None

    # flask-login
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        return str(self.id)


class PersonSchool(Base):
    """A person's membership of a school (OneRoster users.orgSourcedIds)."""
    __tablename__ = "person_school"

    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id", ondelete="CASCADE"), primary_key=True)

    __table_args__ = (Index("ix_person_school_school", "school_id"),)


def at_school(person_id, school_id):
    """SQL: the person belongs to the school now. A class's students are those enrolled in it
    who are also at its school, and its teachers likewise: an enrollment the roster left behind
    when a student moved to another school gives the old class's teacher nothing, and one left
    behind when the teacher moved gives the teacher nothing there; nor the student the class's
    apps (portal.access)."""
    return exists().where(PersonSchool.person_id == person_id, PersonSchool.school_id == school_id)


class Enrollment(Base):
    __tablename__ = "enrollment"

    id: Mapped[int] = mapped_column(primary_key=True)
    sourced_id: Mapped[str] = mapped_column(String(255), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    section_id: Mapped[int] = mapped_column(ForeignKey("section.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))  # student, teacher, aide, ...
    primary: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_enrollment_person", "person_id"),
        Index("ix_enrollment_section", "section_id"),
    )
