"""Apps a district offers and the grants that say who may launch them."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from portal.db import Base
from portal.models.roster import ROLE_ENUM, Role, School, Section
from portal.models.types import UTCDateTime


# What an app receives unless the district releases more: a pairwise subject (always sent),
# the given name and the family name's initial.
DEFAULT_RELEASE = ("given_name", "family_name_initial")


class AppKind(str, enum.Enum):
    link = "link"
    saml = "saml"
    oidc = "oidc"


class App(Base):
    __tablename__ = "app"
    __table_args__ = {"sqlite_autoincrement": True}   # ids never reused (migration 0008)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[AppKind] = mapped_column(
        Enum(AppKind, name="app_kind", native_enum=False, length=10,
             values_callable=lambda e: [m.value for m in e]))
    # The app's identifier in its protocol: SAML SP entityID or OIDC client_id (None for links).
    client_id: Mapped[str | None] = mapped_column(String(1024), unique=True, nullable=True)
    url: Mapped[str] = mapped_column(String(2048), default="")
    icon: Mapped[str] = mapped_column(Text, default="")  # a data: URL (portal.admin.icons)
    # A fingerprint of the icon, set with it: the tiles page links /apps/<slug>/icon?v=... and
    # never loads the icons themselves (up to 64 KiB each).
    icon_version: Mapped[str] = mapped_column(String(16), default="", server_default="")
    # Protocol settings (ACS URLs, redirect URIs, ...) and released field names, per kind.
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    released_fields: Mapped[list] = mapped_column(JSON, default=lambda: list(DEFAULT_RELEASE))
    # When `portal apps remove` retired it (None: in use). A removed app keeps its row, so that the
    # records of what it received, and deletion requests, go on naming it (migration 0022); it
    # has no grants, and nothing signs in to it.
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    grants: Mapped[list["Grant"]] = relationship(back_populates="app", cascade="all, delete-orphan")

    @validates("icon")
    def _set_icon_version(self, _key: str, icon: str) -> str:
        from portal.admin.icons import icon_version
        self.icon_version = icon_version(icon) if icon else ""
        return icon


class Grant(Base):
    """Who may launch an app. Every criterion that is set must hold (a grant can name several)."""
    __tablename__ = "app_grant"

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("app.id", ondelete="CASCADE"))
    district_id: Mapped[int | None] = mapped_column(ForeignKey("district.id", ondelete="CASCADE"))
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id", ondelete="CASCADE"))
    section_id: Mapped[int | None] = mapped_column(ForeignKey("section.id", ondelete="CASCADE"))
    grade: Mapped[str | None] = mapped_column(String(20))
    role: Mapped[Role | None] = mapped_column(ROLE_ENUM, nullable=True)

    app: Mapped[App] = relationship(back_populates="grants")
    # For describe(): admins name schools and sections by sourcedId, never by our row ids.
    school: Mapped[School | None] = relationship(viewonly=True)
    section: Mapped[Section | None] = relationship(viewonly=True)

    __table_args__ = (
        Index("ix_app_grant_app", "app_id"),
        # The other foreign keys, for the roster removing a district, school or class (every
        # foreign key has an index: see Badge; migration 0023).
        Index("ix_app_grant_district", "district_id"),
        Index("ix_app_grant_school", "school_id"),
        Index("ix_app_grant_section", "section_id"),
        # One grant per group, enforced by the database too: two admins granting at the same
        # moment both found none (portal.admin.services). The group as _same_grant reads it:
        # NULLs equal (coalesce), and a school or class names its district (a grant stored with
        # both is the same group as one without the district). Migration 0017.
        Index("uq_app_grant_group", "app_id",
              text("coalesce(CASE WHEN school_id IS NULL AND section_id IS NULL THEN district_id END, 0)"),
              text("coalesce(school_id, 0)"), text("coalesce(section_id, 0)"),
              text("coalesce(grade, '')"), text("coalesce(role, '')"), unique=True),
    )

    def describe(self) -> str:
        """Say who the grant covers in the words an admin types (`portal apps grant` options)."""
        parts = []
        if self.district_id and not (self.school_id or self.section_id):   # else implied
            parts.append("whole district")
        if self.school_id:
            parts.append(f"school {_named(self.school.sourced_id, self.school.name)}")
        if self.grade:
            parts.append(f"grade {self.grade}")
        if self.section_id:
            parts.append(f"section {_named(self.section.sourced_id, self.section.title)}")
        if self.role:
            parts.append(f"role {self.role.value}")
        return ", ".join(parts) or "nobody"


class AppOptOut(Base):
    """One person kept from one app whatever the grants say: a family opted their child out.

    portal.access leaves the app off the person's tiles and refuses its launches, ID tokens and
    userinfo while the row exists."""
    __tablename__ = "app_opt_out"

    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("app.id", ondelete="CASCADE"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))

    # person_id leads the primary key; the others are for removals (every foreign key has an
    # index: see Badge) and an app's list of opt-outs (migration 0023).
    __table_args__ = (
        Index("ix_app_opt_out_app", "app_id"),
        Index("ix_app_opt_out_by", "by_id"),
    )


def _named(sourced_id: str, name: str) -> str:
    """The sourcedId an admin types, with the name beside it when that is short enough to read."""
    name = " ".join(name.split())  # `portal apps list` separates columns with tabs
    return f"{sourced_id} ({name})" if name and len(name) <= 40 else sourced_id
