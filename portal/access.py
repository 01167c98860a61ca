"""THE policy: which apps a person may launch (and, later, which fields each app receives).

Pure functions over the models. Tiles and every launch ask these; nothing else re-derives them.
"""
from __future__ import annotations

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from portal.models import App, Enrollment, Grant, Person, PersonSchool


def _memberships(db: Session, person: Person) -> tuple[set[int], set[int], set[int]]:
    school_ids = set(db.scalars(select(PersonSchool.school_id).where(PersonSchool.person_id == person.id)))
    section_ids = set(db.scalars(select(Enrollment.section_id).where(Enrollment.person_id == person.id)))
    district_ids = {person.district_id} if person.district_id else set()
    return district_ids, school_ids, section_ids


def _grant_matches(person: Person, district_ids: set[int], school_ids: set[int],
                   section_ids: set[int]):
    # A grant matches when every criterion it names holds for the person.
    def criterion(column, values):
        return or_(column.is_(None), column.in_(values)) if values else column.is_(None)

    return and_(
        criterion(Grant.district_id, district_ids),
        criterion(Grant.school_id, school_ids),
        criterion(Grant.section_id, section_ids),
        criterion(Grant.grade, set(person.grade_list)),
        or_(Grant.role.is_(None), Grant.role == person.role),
        # A grant naming nothing at all grants nothing.
        or_(Grant.district_id.is_not(None), Grant.school_id.is_not(None),
            Grant.section_id.is_not(None), Grant.grade.is_not(None), Grant.role.is_not(None)),
    )


def apps_for(db: Session, person: Person) -> list[App]:
    """Return the apps the person may launch, by name."""
    if not person.enabled:
        return []
    memberships = _memberships(db, person)
    query = (
        select(App)
        .where(App.id.in_(select(Grant.app_id).where(_grant_matches(person, *memberships))))
        .order_by(App.name)
    )
    return list(db.scalars(query))


def may_launch(db: Session, person: Person, app: App) -> bool:
    """True when one of the app's grants covers the person."""
    if not person.enabled:
        return False
    memberships = _memberships(db, person)
    found = db.scalar(
        select(Grant.id).where(Grant.app_id == app.id, _grant_matches(person, *memberships)).limit(1)
    )
    return found is not None
