"""The roster and what district admins keep about people: an import never lifts a security hold,
and a deletion request outlives the student the import removes."""
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


def test_a_deletion_request_outlives_the_student_the_import_removes(app, db_session, redis_client, bundles,
                                                                    roster_rows):
    from portal import audit
    from portal.admin.deletions import ask_deletion, identifiers
    from portal.models import DeletionRequest, Event
    from portal.sso.saml import register_sp
    import_roster(db_session, bundles.write(roster_rows), redis_client=redis_client)
    ada = db_session.scalar(select(Person).where(Person.username == "ada.lovelace"))
    sp = register_sp(db_session, "Reading", entity_id="https://reading.example/sp",
                     acs_urls=["https://reading.example/acs"])
    audit.record("launch", person=ada, app=sp, data={"protocol": "saml", "fields": ["subject", "given_name"]})
    request, _ = ask_deletion(db_session, ada, sp, actor=None, pairwise_key=app.config["SETTINGS"].pairwise_key,
                              now=datetime.now(timezone.utc))
    subject = request.subject
    roster_rows["users"][0]["status"] = "tobedeleted"
    roster_rows["enrollments"] = [e for e in roster_rows["enrollments"] if e["userSourcedId"] != "u1"]
    import_roster(db_session, bundles.write(roster_rows), redis_client=redis_client)
    db_session.expire_all()
    assert db_session.scalar(select(Person).where(Person.username == "ada.lovelace")) is None
    assert db_session.scalar(select(Event).where(Event.kind == "launch")) is None   # records go with her
    kept = db_session.scalar(select(DeletionRequest))
    assert (kept.person_id, kept.app_name, kept.subject, kept.fields) == (None, "Reading", subject,
                                                                          ["subject", "given_name"])
    assert identifiers(kept) == [("subject (the id the portal sent this app, different for every app)", subject)]


def test_a_deletion_request_outlives_its_district_the_import_removes(app, db_session, redis_client, bundles,
                                                                     roster_rows, runner):
    # Found by review: the request went with its district (a district whose sourcedId changed
    # is removed and added), and with it the record of what the district had asked a vendor.
    from portal import audit
    from portal.admin.deletions import ask_deletion
    from portal.models import DeletionRequest
    from portal.sso.saml import register_sp
    import_roster(db_session, bundles.write(roster_rows), redis_client=redis_client)
    ada = db_session.scalar(select(Person).where(Person.username == "ada.lovelace"))
    sp = register_sp(db_session, "Reading", entity_id="https://reading.example/sp",
                     acs_urls=["https://reading.example/acs"])
    audit.record("launch", person=ada, app=sp, data={"protocol": "saml", "fields": ["subject"]})
    ask_deletion(db_session, ada, sp, actor=None, pairwise_key=app.config["SETTINGS"].pairwise_key,
                 now=datetime.now(timezone.utc))
    for org in roster_rows["orgs"]:                       # d1 becomes D-001
        org["sourcedId"] = "D-001" if org["sourcedId"] == "d1" else org["sourcedId"]
        org["parentSourcedId"] = "D-001" if org.get("parentSourcedId") == "d1" else org.get("parentSourcedId", "")
    for user in roster_rows["users"]:
        user["orgSourcedIds"] = user["orgSourcedIds"].replace("d1", "D-001")
    for course in roster_rows["courses"]:
        course["orgSourcedId"] = "D-001"
    import_roster(db_session, bundles.write(roster_rows), redis_client=redis_client)
    db_session.expire_all()
    kept = db_session.scalar(select(DeletionRequest))
    assert kept is not None and kept.district_id is None and kept.app_name == "Reading"
    listed = runner.invoke(args=["deletions", "list"])
    assert listed.exit_code == 0 and "Reading" in listed.output
