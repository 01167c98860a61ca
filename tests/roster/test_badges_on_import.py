"""The roster and badges meet: a student the roster disables or removes loses their badge."""
from sqlalchemy import select

from portal.badges.services import issue_badge
from portal.models import Person
from portal.models.badges import Badge
from portal.roster.importer import import_roster


def _active_badges(db, username):
    person = db.scalar(select(Person).where(Person.username == username))
    return [b for b in db.scalars(select(Badge).where(Badge.person_id == person.id))
            if b.revoked_at is None]


def test_disabled_student_loses_badge(db_session, redis_client, bundles, roster_rows):
    import_roster(db_session, bundles.write(roster_rows), redis_client=redis_client)
    ada = db_session.scalar(select(Person).where(Person.username == "ada.lovelace"))
    issue_badge(db_session, redis_client, ada)
    assert len(_active_badges(db_session, "ada.lovelace")) == 1

    roster_rows["users"][0]["enabledUser"] = "false"
    import_roster(db_session, bundles.write(roster_rows), redis_client=redis_client)
    assert _active_badges(db_session, "ada.lovelace") == []
    # Her classmate's badge is untouched.
    grace = db_session.scalar(select(Person).where(Person.username == "grace.hopper"))
    issue_badge(db_session, redis_client, grace)
    import_roster(db_session, bundles.write(roster_rows), redis_client=redis_client)
    assert len(_active_badges(db_session, "grace.hopper")) == 1


def test_removed_student_badge_goes_with_them(db_session, redis_client, bundles, roster_rows):
    import_roster(db_session, bundles.write(roster_rows), redis_client=redis_client)
    ada = db_session.scalar(select(Person).where(Person.username == "ada.lovelace"))
    issue_badge(db_session, redis_client, ada)
    ada_id = ada.id
    roster_rows["users"][0]["status"] = "tobedeleted"
    roster_rows["enrollments"] = [e for e in roster_rows["enrollments"] if e["userSourcedId"] != "u1"]
    import_roster(db_session, bundles.write(roster_rows), redis_client=redis_client)
    assert db_session.scalar(select(Badge).where(Badge.person_id == ada_id)) is None
