"""Every roster import, accepted or refused, leaves one audit event about no one: what it did in
counts, or which check refused it and how many problems it found; never a name, username or row."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from portal.models import District, Event
from portal.roster import RosterError, import_roster
from portal.roster.problems import GARBLED, PROBLEMS, REFUSALS, REMOVES_HELD, REMOVES_MANY, UNREADABLE
from portal.roster.record import ROSTER_KINDS, bundle_name
from tests.roster.conftest import ROSTER, _user, refused, snapshot
from tests.roster.test_names import as_excel_saves_it

# Every name, username, email and student number of the small roster, in lower case.
PERSONAL = {value.lower() for user in ROSTER["users"]
            for key, value in user.items()
            if key in ("username", "givenName", "familyName", "email", "identifier") and value}


def _records(db) -> list[Event]:
    db.expire_all()
    return list(db.scalars(select(Event).where(Event.kind.in_(ROSTER_KINDS)).order_by(Event.id)))


def _last(db) -> Event:
    return _records(db)[-1]


def _about_no_one_and_nothing_personal(event: Event) -> None:
    assert (event.person_id, event.actor_id, event.actor_name, event.app_id) == (None, None, None, None)
    written = json.dumps(event.data, ensure_ascii=False).lower()
    assert not [value for value in PERSONAL if value in written], written


def _district(db) -> int:
    return db.scalar(select(District.id))


def test_an_accepted_import_records_its_counts_and_no_one(db_session, bundles, roster_rows):
    import_roster(db_session, bundles.write(roster_rows))

    [event] = _records(db_session)
    assert event.kind == "roster_imported"
    assert event.data == {"district_id": _district(db_session), "bundle": "bundle1", "mode": "full",
                          "districts_added": 1, "schools_added": 2, "classes_added": 2, "people_added": 7,
                          "people_skipped": 1, "enrollments_added": 5}
    _about_no_one_and_nothing_personal(event)

    # A change, a removal and a new sourcedId for the same person (re-keyed).
    roster_rows["users"][0]["givenName"] = "Augusta"
    roster_rows["users"][1]["sourcedId"] = roster_rows["enrollments"][1]["userSourcedId"] = "u2-new"
    del roster_rows["users"][2], roster_rows["enrollments"][2]
    import_roster(db_session, bundles.write(roster_rows))

    event = _last(db_session)
    assert event.data == {"district_id": _district(db_session), "bundle": "bundle2", "mode": "full",
                          "people_changed": 2, "people_removed": 1, "people_rekeyed": 1, "people_skipped": 1,
                          "enrollments_removed": 1}
    _about_no_one_and_nothing_personal(event)

    delta = {"users": [dict(roster_rows["users"][0], givenName="Ada")]}
    import_roster(db_session, bundles.write(delta, modes={"users": "delta"}))
    assert _last(db_session).data == {"district_id": _district(db_session), "bundle": "bundle3", "mode": "delta",
                                      "people_changed": 1}


def test_an_import_that_changes_nothing_is_recorded_too(db_session, bundles, roster_rows, imported):
    # The admin's home page tells the night's import that found nothing to change from none at all.
    import_roster(db_session, bundles.write(roster_rows))

    assert [e.kind for e in _records(db_session)] == ["roster_imported", "roster_imported"]
    assert _last(db_session).data == {"district_id": _district(db_session), "bundle": "bundle2", "mode": "full",
                                      "people_skipped": 1}
    assert snapshot(db_session) == imported


def test_a_refused_import_records_how_many_problems_and_changes_nothing_else(db_session, bundles, roster_rows,
                                                                            imported):
    roster_rows["users"][1]["username"] = "ada.lovelace"          # a username used twice
    roster_rows["users"][2]["role"] = "wizard"

    problems = refused(db_session, bundles.write(roster_rows))

    assert len(problems) == 2 and "ada.lovelace" in problems[1]   # the lines name people ...
    assert snapshot(db_session) == imported
    event = _last(db_session)
    assert event.kind == "roster_refused"
    assert event.data == {"district_id": _district(db_session), "bundle": "bundle2", "mode": "full",
                          "problems": 2, "refused_by": REFUSALS[PROBLEMS].words, "refusals": [PROBLEMS]}
    _about_no_one_and_nothing_personal(event)                      # ... the record does not


def test_the_quarter_removal_guard_records_its_refusal_and_the_cli_still_says_why(runner, db_session, bundles,
                                                                                 roster_rows):
    roster_rows["users"] += [_user(f"x{i}", f"kid{i}", "Kid", f"N{i}", grades="02") for i in range(60)]
    assert runner.invoke(args=["roster", "import", str(bundles.write(roster_rows))]).exit_code == 0
    before = snapshot(db_session)
    roster_rows["users"], roster_rows["enrollments"] = [], []
    cut_off = str(bundles.write(roster_rows))

    result = runner.invoke(args=["roster", "import", cut_off])

    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.output.startswith("Error: the roster was not imported; nothing changed:\n"
                                    "  this import would remove 67 of the 67 people in the portal (100%)")
    assert snapshot(db_session) == before
    event = _last(db_session)
    assert event.kind == "roster_refused" and event.data == {
        "district_id": _district(db_session), "bundle": "bundle2", "mode": "full", "problems": 1,
        "refused_by": REFUSALS[REMOVES_MANY].words, "refusals": [REMOVES_MANY]}
    _about_no_one_and_nothing_personal(event)

    assert runner.invoke(args=["roster", "import", cut_off, "--allow-removals"]).exit_code == 0
    event = _last(db_session)
    assert event.kind == "roster_imported"
    assert event.data["removals_allowed"] is True and event.data["people_removed"] == 67
    assert [e.kind for e in _records(db_session)] == ["roster_imported", "roster_refused", "roster_imported"]


def test_a_refusal_for_someone_on_hold_names_the_check_not_the_person(db_session, redis_client, bundles,
                                                                     roster_rows, imported):
    from portal.admin.holds import place_hold
    from portal.models import Person
    ada = db_session.scalar(select(Person).where(Person.username == "ada.lovelace"))
    place_hold(db_session, redis_client, ada, actor=None, reason="shared password", now=datetime.now(timezone.utc))
    roster_rows["users"][0]["status"] = "tobedeleted"
    roster_rows["enrollments"] = roster_rows["enrollments"][1:]

    with pytest.raises(RosterError) as caught:
        import_roster(db_session, bundles.write(roster_rows), redis_client=redis_client)

    assert "ada.lovelace" in caught.value.problems[0]
    event = _last(db_session)
    assert event.data["refusals"] == [REMOVES_HELD] and event.data["problems"] == 1
    assert event.data["refused_by"] == "it would remove people on security hold"
    _about_no_one_and_nothing_personal(event)
    assert "shared password" not in json.dumps(event.data)


def test_an_unreadable_or_garbled_bundle_is_recorded_with_what_is_known(db_session, bundles, roster_rows,
                                                                       imported, tmp_path):
    refused(db_session, tmp_path / "missing.zip")
    assert _last(db_session).data == {"district_id": _district(db_session), "bundle": "missing.zip",
                                      "problems": 1, "refused_by": REFUSALS[UNREADABLE].words,
                                      "refusals": [UNREADABLE]}

    roster_rows["users"][1].update(givenName="Zoë", familyName="Brontë")
    roster_rows["orgs"][2]["name"] = "École Saint-Exupéry"
    refused(db_session, as_excel_saves_it(bundles.write(roster_rows)))
    event = _last(db_session)
    assert event.data["refusals"] == [GARBLED] and event.data["problems"] == 2
    assert "Zo" not in json.dumps(event.data, ensure_ascii=False) and "cole" not in json.dumps(event.data)
    assert snapshot(db_session) == imported


def test_a_refused_first_import_names_no_district(db_session, tmp_path):
    # No district yet: the record names none, and every district's log shows it (portal.admin.shared).
    refused(db_session, tmp_path / "nothing-here")
    [event] = _records(db_session)
    assert "district_id" not in event.data and event.data["bundle"] == "nothing-here"


def test_a_bundle_with_too_many_problems_records_that_more_were_not_counted(db_session, bundles, roster_rows,
                                                                           imported):
    for enrollment in roster_rows["enrollments"]:
        enrollment["userSourcedId"] = "u99"
    roster_rows["users"] += [_user(f"x{i}", f"kid{i}", "Kid", f"N{i}", role="wizard") for i in range(30)]

    problems = refused(db_session, bundles.write(roster_rows))

    assert problems[-1].startswith("(stopped after 20 problems")
    data = _last(db_session).data
    assert (data["problems"], data["more_problems"]) == (20, True)


def test_a_refusal_that_cannot_be_recorded_is_reported_all_the_same(db_session, bundles, roster_rows, imported,
                                                                   monkeypatch, caplog):
    from portal import audit

    def broken(*args, **kwargs):
        raise OperationalError("INSERT INTO audit_event", {}, Exception("database is locked"))

    roster_rows["enrollments"][2]["userSourcedId"] = "u99"
    monkeypatch.setattr(audit, "record_many", broken)
    with caplog.at_level(logging.WARNING, logger="portal.roster.record"):
        problems = refused(db_session, bundles.write(roster_rows))

    assert problems == ['enrollments.csv line 4: userSourcedId "u99" is not in users.csv']
    assert "the refusal could not be recorded in the audit log: OperationalError" in caplog.text
    monkeypatch.undo()
    assert [e.kind for e in _records(db_session)] == ["roster_imported"]
    assert snapshot(db_session) == imported


def test_the_demo_records_its_import(runner, db_session):
    from portal.roster.demo import DEMO_ACCOUNTS
    assert runner.invoke(args=["demo", "--students", "20"]).exit_code == 0
    [event] = _records(db_session)
    assert event.kind == "roster_imported" and event.data["bundle"].startswith("portal-demo-")
    assert event.data["people_added"] > 20
    assert not [a.username for a in DEMO_ACCOUNTS if a.username in json.dumps(event.data)]


@pytest.mark.parametrize("path, name", [
    ("/srv/sis/2026-03-10/", "2026-03-10"),
    ("/srv/sis/export.zip", "export.zip"),
    ("/srv/sis/export\n\x1b[2J\u202e.zip", "export??[2J?.zip"),     # one line, no terminal's or bidi codes
    ("/srv/sis/" + "x" * 300, "x" * 120),
])
def test_the_record_keeps_the_bundles_own_name_on_one_line(path, name):
    assert bundle_name(path) == name


def test_an_import_refused_by_redis_password_is_recorded_as_such():
    # Found by review: it was recorded as "rows or columns with problems", whose advice is to fix
    # them in the student information system.
    import redis

    from portal.roster.importer import _require_redis
    from portal.roster.problems import REDIS_PASSWORD, REFUSALS, RosterError

    def refused():
        raise redis.AuthenticationError("invalid username-password pair or user is disabled.")
    with pytest.raises(RosterError) as caught:
        _require_redis(refused)
    assert caught.value.reasons == (REDIS_PASSWORD,)
    assert "PORTAL_REDIS_URL" in REFUSALS[REDIS_PASSWORD].advice
