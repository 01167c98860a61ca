"""Badge credentials: QR badges, the kiosk devices that scan them, each school's badge policy,
and students' second factors (PIN or picture choice). Secrets are stored only as hashes."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base
from portal.models.roster import Person, School
from portal.models.types import UTCDateTime


class BadgeKind(str, enum.Enum):
    permanent = "permanent"  # the printed card, until the end of the school year
    temporary = "temporary"  # a forgotten card: 1 to 12 hours, beside the permanent one


class FactorKind(str, enum.Enum):
    pin = "pin"
    picture = "picture"


def _enum(cls, name: str):
    return Enum(cls, name=name, native_enum=False, length=10,
                values_callable=lambda e: [m.value for m in e])


class BadgePolicy(Base):
    """How one school lets its students use badges. No row: the defaults in badges.policy."""
    __tablename__ = "badge_policy"

    school_id: Mapped[int] = mapped_column(
        ForeignKey("school.id", ondelete="CASCADE"), primary_key=True)
    grades: Mapped[str] = mapped_column(String(255))  # comma separated, OneRoster codes
    second_factor_grades: Mapped[str] = mapped_column(String(255), default="")
    factor: Mapped[FactorKind] = mapped_column(_enum(FactorKind, "badge_factor_kind"))
    allow_browser_scanner: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_on: Mapped[str | None] = mapped_column(String(10), nullable=True)  # MM-DD or <N>d
    # The networks the browser scanner works from, comma separated (10.20.0.0/16,2001:db8::/48);
    # empty: any. Enrolled kiosk devices carry their own credential and work anywhere.
    scanner_networks: Mapped[str] = mapped_column(String(2000), default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class KioskDevice(Base):
    """A classroom device enrolled to scan badges for one school."""
    __tablename__ = "kiosk_device"
    __table_args__ = (
        # Removing a person sets created_by_id NULL where it names them: found along this index,
        # not by reading every device (migration 0023; see Badge).
        Index("ix_kiosk_device_created_by", "created_by_id"),
        {"sqlite_autoincrement": True},   # ids never reused (migration 0008)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the bearer credential (256 random bits) the device sends with every scan.
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # SHA-256 of the key in the device browser's cookie that hand-offs are bound to.
    browser_key_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    school: Mapped[School] = relationship()


class Badge(Base):
    """One QR badge of a student. The token itself is never stored, only its SHA-256."""
    __tablename__ = "badge"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[BadgeKind] = mapped_column(_enum(BadgeKind, "badge_kind"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_device_id: Mapped[int | None] = mapped_column(
        ForeignKey("kiosk_device.id", ondelete="SET NULL"), nullable=True)

    person: Mapped[Person] = relationship(foreign_keys=[person_id])
    school: Mapped[School] = relationship()

    __table_args__ = (
        # One active badge of each kind per student and school, enforced by the database too (a
        # student at two schools has a card for each: a kiosk accepts only its own school's).
        Index("uq_badge_active", "person_id", "kind", "school_id", unique=True,
              sqlite_where=text("revoked_at IS NULL"), postgresql_where=text("revoked_at IS NULL")),
        Index("ix_badge_person", "person_id"),
        # Every foreign key has an index whose first column it is: removing a row that others
        # point at (ON DELETE SET NULL or CASCADE) makes both databases find those rows by the
        # key, and without an index each removal read the whole table. The roster removing a
        # class's year of graduates read all badges once per person (55 ms each at 200,000
        # badges on SQLite), holding the write lock (migration 0023; tests/test_migrations.py).
        Index("ix_badge_issued_by", "issued_by_id"),
        Index("ix_badge_last_used_device", "last_used_device_id"),
        {"sqlite_autoincrement": True},   # ids never reused (migration 0008)
    )

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


class BadgeFactor(Base):
    """A student's second factor for badge sign-in (argon2 hashes), their wrong tries in a row
    and the teacher-help lock those lead to."""
    __tablename__ = "badge_factor"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)
    pin_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    picture_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Since the last right answer or teacher help, however slowly and with whichever badge.
    wrong_tries: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def secret_hash(self, kind: FactorKind) -> str | None:
        return self.pin_hash if kind is FactorKind.pin else self.picture_hash
