"""The roster and security holds meet: an import never lifts a hold a district admin placed."""
from datetime import datetime, timezone

from sqlalchemy import select

from portal.admin.holds import place_hold
from portal.models import Person
from portal.roster.importer import import_roster


def test_an_import_that_changes_a_held_student_keeps_the_hold(db_session, redis_client, bundles, roster_rows):
    import_roster(db_session, bundles.write(roster_rows), redis_client=redis_client)
    ada = db_session.scalar(select(Person).where(Person.username == "ada.lovelace"))
    place_hold(db_session, redis_client, ada, actor=None, reason="shared password",
               now=datetime.now(timezone.utc))
    roster_rows["users"][0]["givenName"] = "Augusta"      # the import updates her row
    roster_rows["users"][0]["enabledUser"] = "true"
    import_roster(db_session, bundles.write(roster_rows), redis_client=redis_client)
    db_session.expire_all()
    ada = db_session.scalar(select(Person).where(Person.username == "ada.lovelace"))
    assert ada.given_name == "Augusta"
    assert ada.held_at is not None and ada.hold_reason == "shared password" and not ada.active
