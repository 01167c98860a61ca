"""THE policy: which apps a person may launch, and which fields each app receives.

Pure functions over the models. Tiles, SAML and OIDC all ask these; nothing else re-derives them.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re

from sqlalchemy import and_, bindparam, exists, or_, select
from sqlalchemy.orm import Session, defer

from portal.models import App, AppOptOut, Enrollment, Grant, Person, PersonSchool, School, Section
from portal.models.roster import at_school
from portal.names import by_word, family_initial

# The catalogue of fields a district can release to an app, with a plain description for admins.
FIELDS: dict[str, str] = {
    "subject": "an id for the student that is different for every app (always sent)",
    "given_name": "first name (the preferred name when the roster has one)",
    "family_name": "last name",
    "family_name_initial": "first letter of the last name, as on badges",
    "display_name": "first and last name together",
    "email": "email address",
    "username": "portal username",
    "grade": "grade level(s), as in the roster",
    "school": "school name(s)",
    "school_id": "school id(s), as in the roster",
    "sections": "class (section) ids, as in the roster",
    "role": "student, teacher, school admin or district admin",
    "student_number": "the district's student number",
}


class UnknownField(ValueError):
    """A field name that is not in the catalogue."""


def _grant_matches():
    # A grant matches when every criterion it names holds for the person. Built once with the
    # person's values as parameters: the database looks up schools and sections in the same
    # round trip, and SQLAlchemy compiles the statement once (the tiles page runs it each time).
    person_id = bindparam("person_id")
    schools = select(PersonSchool.school_id).where(PersonSchool.person_id == person_id)
    # A class is the person's only while the roster puts them at its school (an enrollment left
    # behind when they moved gives nothing, as on the teacher pages: portal.badges.permissions).
    sections = (select(Enrollment.section_id).join(Section, Section.id == Enrollment.section_id)
                .where(Enrollment.person_id == person_id, at_school(person_id, Section.school_id)))
    return and_(
        or_(Grant.district_id.is_(None), Grant.district_id == bindparam("district_id")),
        or_(Grant.school_id.is_(None), Grant.school_id.in_(schools)),
        or_(Grant.section_id.is_(None), Grant.section_id.in_(sections)),
        or_(Grant.grade.is_(None), Grant.grade.in_(bindparam("grades", expanding=True))),
        or_(Grant.role.is_(None), Grant.role == bindparam("role")),
        # A grant naming nothing at all grants nothing.
        or_(Grant.district_id.is_not(None), Grant.school_id.is_not(None),
            Grant.section_id.is_not(None), Grant.grade.is_not(None), Grant.role.is_not(None)),
        # And no grant covers a person opted out of the app (a primary-key lookup).
        ~exists().where(AppOptOut.person_id == person_id, AppOptOut.app_id == Grant.app_id),
    )


_MATCHES = _grant_matches()
# A removed app (portal apps remove) opens for no one, whatever grant it has: its grants are
# deleted with it, but one made at that very moment (an admin's "Add this group") could outlive them.
_IN_USE = App.removed_at.is_(None)
# Tiles show names and icon links: the icons, protocol settings and field lists stay unloaded.
_APPS_FOR = (select(App).options(defer(App.icon), defer(App.settings), defer(App.released_fields))
             .where(_IN_USE, App.id.in_(select(Grant.app_id).where(_MATCHES))))
_MAY_LAUNCH = (select(Grant.id).join(App, App.id == Grant.app_id)
               .where(Grant.app_id == bindparam("app_id"), _IN_USE, _MATCHES).limit(1))
# A tile click: the app by its slug, only if one of its grants covers the person (one statement).
_LAUNCHABLE = select(App).where(App.slug == bindparam("slug"), _IN_USE,
                                exists().where(Grant.app_id == App.id, _MATCHES))


def _person_params(person: Person) -> dict:
    return {"person_id": person.id, "district_id": person.district_id,
            "grades": person.grade_list, "role": person.role}


def apps_for(db: Session, person: Person) -> list[App]:
    """Return the apps the person may launch, by name."""
    if not person.active:
        return []
    return by_word(db.scalars(_APPS_FOR, _person_params(person)))


def may_launch(db: Session, person: Person, app: App) -> bool:
    """True when one of the app's grants covers the person."""
    if not person.active:
        return False
    # On the session's connection: a yes or no needs no ORM (its execute path doubles the cost).
    row = db.connection().execute(_MAY_LAUNCH, {**_person_params(person), "app_id": app.id}).first()
    return row is not None


def launchable(db: Session, person: Person, slug: str) -> App | None:
    """The app with this slug if the person may launch it, else None (as if it did not exist)."""
    if not person.active:
        return None
    return db.scalar(_LAUNCHABLE, {**_person_params(person), "slug": slug})


def check_fields(names) -> list[str]:
    """Return the names in catalogue order, refusing any that are not in the catalogue."""
    unknown = [n for n in names if n not in FIELDS]
    if unknown:
        raise UnknownField(f"unknown field {unknown[0]!r}; fields are: {', '.join(FIELDS)}")
    return [n for n in FIELDS if n in set(names)]


def pairwise_subject(key: str, person: Person, app: App) -> str:
    """A subject stable for one app and different for every app, so apps cannot join records.
    Stable across a new sourcedId too: a re-keyed person's is made from the one they had."""
    seed = person.subject_seed or person.sourced_id
    digest = hmac.new(key.encode(), f"{app.id}|{seed}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:20]).decode().lower()


# What pairwise_subject makes: 20 bytes in base32, 32 characters of a-z and 2-7, no padding.
_SUBJECT_SHAPE = re.compile(r"[a-z2-7]{32}")


def shaped_like_subject(text: str) -> bool:
    """True when `text` has the form of a subject pairwise_subject makes (whoever's it may be)."""
    return _SUBJECT_SHAPE.fullmatch(text) is not None


# The released fields by which an app can also find the student in its own records. A release
# record keeps no value, only the field names and, for these, a short keyed hash of each value
# sent (released_ids): a deletion letter then gives the vendor a value only if the app received it.
IDENTIFYING = ("username", "email", "student_number")


@functools.lru_cache(maxsize=4)
def _ids_key(pairwise_key: str) -> bytes:
    # A key of its own, derived from the pairwise key (never changed, so old records still match).
    return hmac.digest(pairwise_key.encode(), b"portal release record: identifying values", "sha256")


def identifier_hash(pairwise_key: str, field: str, value: str) -> str:
    """A short keyed hash of one identifying value (16 hex digits): it tells whether a value is the
    one recorded, and without the key it tells nothing about the value."""
    return hmac.digest(_ids_key(pairwise_key), f"{field}|{value}".encode(), "sha256").hex()[:16]


def released_ids(pairwise_key: str, claims: dict, fields=None) -> dict[str, str]:
    """For a release record: the keyed hash of each identifying field among `claims` (those in
    `fields` only, when given: what OpenID's scope let through). One HMAC per such field."""
    return {name: identifier_hash(pairwise_key, name, str(claims[name])) for name in IDENTIFYING
            if name in claims and (fields is None or name in fields)}


def released_claims(db: Session, person: Person, app: App, *, pairwise_key: str) -> dict:
    """Return exactly the fields `app` may receive about `person` (field name -> value).

    The single source of what an app receives: SAML attributes, ID tokens and userinfo are
    all built from this. Subject is always present; everything else only when released.
    """
    released = set(app.released_fields or ())
    claims: dict = {"subject": pairwise_subject(pairwise_key, person, app)}
    given = person.preferred_name or person.given_name

    def want(name: str) -> bool:
        return name in released

    # A person with one name has "" for the other: an app is sent no empty name, as it is sent
    # no empty email address.
    if want("given_name") and given:
        claims["given_name"] = given
    if want("family_name") and person.family_name:
        claims["family_name"] = person.family_name
    if want("family_name_initial"):
        # As on the student's badge: "D" for "de la Cruz", none when the family name has no letter.
        initial = family_initial(person.family_name)
        if initial:
            claims["family_name_initial"] = initial
    if want("display_name") and person.display_name:
        claims["display_name"] = person.display_name
    if want("email") and person.email:
        claims["email"] = person.email
    if want("username"):
        claims["username"] = person.username
    if want("grade"):
        claims["grade"] = person.grade_list
    if want("school") or want("school_id"):
        schools = list(db.execute(
            select(School.name, School.sourced_id)
            .join(PersonSchool, PersonSchool.school_id == School.id)
            .where(PersonSchool.person_id == person.id).order_by(School.name)
        ))
        if want("school"):
            claims["school"] = [name for name, _ in schools]
        if want("school_id"):
            claims["school_id"] = [sid for _, sid in schools]
    if want("sections"):
        claims["sections"] = list(db.scalars(
            select(Section.sourced_id).join(Enrollment, Enrollment.section_id == Section.id)
            .where(Enrollment.person_id == person.id, at_school(person.id, Section.school_id))
            .order_by(Section.sourced_id)
        ))
    if want("role"):
        claims["role"] = person.role.value
    if want("student_number") and person.student_number:
        claims["student_number"] = person.student_number
    return claims
