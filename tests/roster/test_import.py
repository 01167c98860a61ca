"""import_roster on good bundles: what lands where, updates, removals, modes, idempotence."""
from __future__ import annotations

import zipfile

import pytest
from sqlalchemy import event, func, select

from portal.db import db
from portal.models import District, Enrollment, Person, PersonSchool, Role, School, Section
from portal.roster import apply, import_roster
from tests.roster.conftest import HEADERS, _enrollment, _user, snapshot


def person(db, sid) -> Person | None:
    return db.scalar(select(Person).where(Person.sourced_id == sid))


def counts(summary) -> dict:
    return {kind: (c.created, c.updated, c.removed, c.skipped)
            for kind, c in summary.counts.items()}


def schools_of(db, sid) -> set[str]:
    return set(db.scalars(select(School.sourced_id).join(PersonSchool,
                                                          PersonSchool.school_id == School.id)
                          .join(Person, Person.id == PersonSchool.person_id)
                          .where(Person.sourced_id == sid)))


def enrollment_sids(db) -> set[str]:
    return set(db.scalars(select(Enrollment.sourced_id)))


def test_folder_import_creates_the_roster(db_session, bundles, roster_rows):
    summary = import_roster(db_session, bundles.write(roster_rows))

    assert counts(summary) == {
        "districts": (1, 0, 0, 0), "schools": (2, 0, 0, 0), "sections": (2, 0, 0, 0),
        "people": (7, 0, 0, 1), "enrollments": (5, 0, 0, 0)}
    district = db_session.scalar(select(District))
    assert (district.sourced_id, district.name) == ("d1", "Riverside Unified")
    maple = db_session.scalar(select(School).where(School.sourced_id == "s1"))
    assert (maple.name, maple.identifier, maple.district_id) == ("Maple Elementary", "061",
                                                                  district.id)
    ada = person(db_session, "u1")
    assert ada.username == "ada.lovelace"  # stored lower-case
    assert (ada.role, ada.given_name, ada.grades, ada.student_number, ada.email) == (
        Role.student, "Ada", "02", "1001", "ada@example.org")
    assert ada.district_id == district.id and ada.enabled
    assert schools_of(db_session, "u1") == {"s1"}
    assert person(db_session, "u6").enabled is False
    assert person(db_session, "u7") is None  # a parent: counted as skipped
    math = db_session.scalar(select(Section).where(Section.sourced_id == "k2"))
    assert (math.course_title, math.grades, math.school.sourced_id) == ("Math 7", "07", "s2")
    teacher = db_session.scalar(select(Enrollment).where(Enrollment.sourced_id == "e3"))
    assert (teacher.role, teacher.primary) == ("teacher", True)


def test_staff_roles_follow_their_orgs(db_session, bundles, roster_rows):
    import_roster(db_session, bundles.write(roster_rows))

    assert person(db_session, "u3").role is Role.teacher
    assert person(db_session, "u8").role is Role.teacher  # an aide
    assert person(db_session, "u4").role is Role.school_admin  # orgs are schools
    assert person(db_session, "u5").role is Role.district_admin  # an org is the district
    district_id = db_session.scalar(select(District.id))
    assert person(db_session, "u5").district_id == district_id
    assert schools_of(db_session, "u5") == set()


def test_zip_import_matches_folder_import(db_session, bundles, roster_rows, tmp_path):
    folder = bundles.write(roster_rows)
    archive = tmp_path / "roster.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in folder.iterdir():
            z.write(f, f"export-2025/{f.name}")  # zipped with its folder, as some SIS do

    summary = import_roster(db_session, archive)

    assert counts(summary)["enrollments"] == (5, 0, 0, 0)
    assert not import_roster(db_session, folder).changed


def test_reimport_changes_nothing(db_session, bundles, roster_rows):
    folder = bundles.write(roster_rows)
    import_roster(db_session, folder)
    before = snapshot(db_session)

    summary = import_roster(db_session, folder)

    assert all(c[:3] == (0, 0, 0) for c in counts(summary).values())
    assert not summary.changed
    assert snapshot(db_session) == before


def test_changed_rows_show_as_updated(db_session, bundles, roster_rows):
    import_roster(db_session, bundles.write(roster_rows))
    roster_rows["users"][0]["givenName"] = "Augusta"
    roster_rows["users"][1]["grades"] = "03"
    roster_rows["users"][2]["orgSourcedIds"] = "s1,s2"  # only the schools change
    roster_rows["enrollments"][1]["role"] = "aide"
    roster_rows["classes"][0]["title"] = "Room 5"
    roster_rows["orgs"][1]["name"] = "Maple Street Elementary"

    summary = import_roster(db_session, bundles.write(roster_rows))

    assert counts(summary) == {
        "districts": (0, 0, 0, 0), "schools": (0, 1, 0, 0), "sections": (0, 1, 0, 0),
        "people": (0, 3, 0, 1), "enrollments": (0, 1, 0, 0)}
    assert person(db_session, "u1").given_name == "Augusta"
    assert person(db_session, "u2").grades == "03"
    assert schools_of(db_session, "u3") == {"s1", "s2"}
    role = db_session.scalar(select(Enrollment.role).where(Enrollment.sourced_id == "e2"))
    assert role == "aide"


def test_tobedeleted_removes_the_row_and_its_enrollments(db_session, bundles, roster_rows):
    import_roster(db_session, bundles.write(roster_rows))
    delta = {"users": [{"sourcedId": "u2", "status": "tobedeleted"}],
             "enrollments": [{"sourcedId": "e4", "status": "tobedeleted"}]}

    summary = import_roster(db_session, bundles.write(delta, modes={"users": "delta",
                                                                      "enrollments": "delta"}))

    assert counts(summary)["people"] == (0, 0, 1, 0)
    assert counts(summary)["enrollments"] == (0, 0, 2, 0)  # e4, and u2's own e2
    assert person(db_session, "u2") is None
    assert enrollment_sids(db_session) == {"e1", "e3", "e5"}
    assert person(db_session, "u1") is not None


def test_tobedeleted_removes_in_bulk_mode_too(db_session, bundles, roster_rows):
    import_roster(db_session, bundles.write(roster_rows))
    roster_rows["classes"][1]["status"] = "tobedeleted"
    del roster_rows["enrollments"][3:]  # k2's enrollments leave with it

    summary = import_roster(db_session, bundles.write(roster_rows))

    assert counts(summary)["sections"] == (0, 0, 1, 0)
    assert counts(summary)["enrollments"] == (0, 0, 2, 0)
    assert db_session.scalar(select(func.count(Section.id))) == 1


def test_row_missing_from_bulk_file_is_removed(db_session, bundles, roster_rows):
    import_roster(db_session, bundles.write(roster_rows))
    roster_rows["users"] = [u for u in roster_rows["users"] if u["sourcedId"] != "u1"]
    roster_rows["enrollments"] = [e for e in roster_rows["enrollments"] if e["userSourcedId"] != "u1"]

    summary = import_roster(db_session, bundles.write(roster_rows))

    assert counts(summary)["people"] == (0, 0, 1, 1)
    assert counts(summary)["enrollments"] == (0, 0, 1, 0)
    assert person(db_session, "u1") is None


def test_a_removed_persons_id_is_never_given_to_someone_new(db_session, bundles, roster_rows):
    # Whatever still names the removed person's id (an app's access token, a session) must not
    # come to mean the new one. SQLite reused the largest id without AUTOINCREMENT.
    import_roster(db_session, bundles.write(roster_rows))
    newest = max(db_session.scalars(select(Person.id)))
    gone = db_session.scalar(select(Person.sourced_id).where(Person.id == newest))
    roster_rows["users"] = [u for u in roster_rows["users"] if u["sourcedId"] != gone]
    roster_rows["enrollments"] = [e for e in roster_rows["enrollments"] if e["userSourcedId"] != gone]
    import_roster(db_session, bundles.write(roster_rows))
    roster_rows["users"].append(dict(roster_rows["users"][0], sourcedId="u-new", username="new.kid",
                                     identifier="1999", email=""))
    import_roster(db_session, bundles.write(roster_rows))
    assert person(db_session, "u-new").id > newest


def test_row_missing_from_delta_file_is_kept(db_session, bundles, roster_rows):
    import_roster(db_session, bundles.write(roster_rows))
    before = snapshot(db_session)
    delta = {"users": [u for u in roster_rows["users"] if u["sourcedId"] == "u2"],
             "enrollments": [roster_rows["enrollments"][1]]}

    summary = import_roster(db_session, bundles.write(delta, modes={"users": "delta",
                                                                      "enrollments": "delta"}))

    assert not summary.changed
    assert snapshot(db_session) == before


def test_delta_file_adds_and_changes_only_its_rows(db_session, bundles, roster_rows):
    import_roster(db_session, bundles.write(roster_rows))
    delta = {
        "users": [{"sourcedId": "u9", "enabledUser": "true", "orgSourcedIds": "s1",
                   "role": "student", "username": "new.kid", "givenName": "New",
                   "familyName": "Kid", "grades": "02"}],
        # Its class and user come from the database and from this bundle.
        "enrollments": [{"sourcedId": "e9", "classSourcedId": "k1", "schoolSourcedId": "s1",
                         "userSourcedId": "u9", "role": "student"}],
    }
    summary = import_roster(db_session, bundles.write(delta, modes={"users": "delta",
                                                                      "enrollments": "delta"}))

    assert counts(summary)["people"] == (1, 0, 0, 0)
    assert counts(summary)["enrollments"] == (1, 0, 0, 0)
    assert enrollment_sids(db_session) == {"e1", "e2", "e3", "e4", "e5", "e9"}


def test_extra_columns_and_any_column_order_are_accepted(db_session, bundles, roster_rows):
    headers = {name: list(reversed(h)) + ["favouriteColour", "metadata.sis.id"]
               for name, h in HEADERS.items()}
    for rows in roster_rows.values():
        for row in rows:
            row["favouriteColour"] = "teal"
    baseline_folder = bundles.write(roster_rows)

    summary = import_roster(db_session, bundles.write(roster_rows, headers=headers))

    assert counts(summary)["people"] == (7, 0, 0, 1)
    assert not import_roster(db_session, baseline_folder).changed


def test_byte_order_mark_is_accepted(db_session, bundles, roster_rows):
    summary = import_roster(db_session, bundles.write(roster_rows, bom=True))
    assert counts(summary)["districts"] == (1, 0, 0, 0)


def test_password_column_is_ignored(db_session, bundles, roster_rows):
    roster_rows["users"][0]["password"] = "plain-text-secret"
    import_roster(db_session, bundles.write(roster_rows))
    assert person(db_session, "u1").password_hash is None


def test_absent_files_may_be_missing(db_session, bundles, roster_rows):
    import_roster(db_session, bundles.write(roster_rows))
    users_only = {"users": roster_rows["users"]}
    users_only["users"][0]["familyName"] = "King"

    summary = import_roster(db_session, bundles.write(users_only))

    assert counts(summary)["people"] == (0, 1, 0, 1)
    assert len(enrollment_sids(db_session)) == 5


def test_people_can_swap_usernames(db_session, bundles, roster_rows):
    import_roster(db_session, bundles.write(roster_rows))
    first, second = roster_rows["users"][0], roster_rows["users"][1]
    first["username"], second["username"] = second["username"], first["username"]

    summary = import_roster(db_session, bundles.write(roster_rows))

    assert counts(summary)["people"] == (0, 2, 0, 1)
    assert person(db_session, "u1").username == "grace.hopper"
    assert person(db_session, "u2").username == "ada.lovelace"


def test_person_who_becomes_a_guardian_is_removed(db_session, bundles, roster_rows):
    import_roster(db_session, bundles.write(roster_rows))
    roster_rows["users"][1]["role"] = "guardian"
    roster_rows["enrollments"] = [e for e in roster_rows["enrollments"] if e["sourcedId"] != "e2"]

    summary = import_roster(db_session, bundles.write(roster_rows))

    assert counts(summary)["people"] == (0, 0, 1, 2)
    assert person(db_session, "u2") is None


def test_reimport_does_no_writes(db_session, bundles, roster_rows):
    folder = bundles.write(roster_rows)
    import_roster(db_session, folder)
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        import_roster(db_session, folder)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)

    # Nothing but reads, after the lock that keeps a second import waiting (it changes nothing),
    # and the audit event that records the import (the admin's home page says when it was).
    lock = [s for s in statements if not s.upper().startswith("SELECT")]
    recorded = lock.pop()
    assert recorded.startswith("INSERT INTO audit_event ")
    assert lock in (["PRAGMA busy_timeout=900000", "UPDATE district SET id = id WHERE 0",
                     "PRAGMA busy_timeout=10000"],
                    [])  # PostgreSQL's lock is a SELECT
    assert len(statements) > len(lock)


def test_failure_while_writing_rolls_everything_back(db_session, bundles, roster_rows,
                                                     monkeypatch):
    import_roster(db_session, bundles.write(roster_rows))
    before = snapshot(db_session)
    roster_rows["users"][0]["givenName"] = "Augusta"
    roster_rows["users"].append({"sourcedId": "u9", "enabledUser": "true", "orgSourcedIds": "s1",
                                 "role": "student", "username": "new.kid", "givenName": "New",
                                 "familyName": "Kid"})
    roster_rows["enrollments"].pop()  # a removal, written first
    original = apply._Writer.write

    def write(self, table, changes, refs):
        if table.name == "enrollment":
            raise RuntimeError("the disk is full")
        return original(self, table, changes, refs)

    monkeypatch.setattr(apply._Writer, "write", write)
    with pytest.raises(RuntimeError):
        import_roster(db_session, bundles.write(roster_rows))

    assert snapshot(db_session) == before


def _district_of(db_session, username):
    db_session.expire_all()
    person = db_session.scalar(select(Person).where(Person.username == username))
    return db_session.get(District, person.district_id).sourced_id if person.district_id else None


def test_people_not_in_the_file_follow_their_school_to_another_district(db_session, bundles, roster_rows):
    # Found by review: a school moved by an orgs delta took its district along, but not the
    # district of its people (whom the admin pages scope by district).
    import_roster(db_session, bundles.write(roster_rows))
    assert _district_of(db_session, "ada.lovelace") == "d1"
    orgs = {"orgs": [{"sourcedId": "d2", "name": "Hillside Unified", "type": "district"},
                     {"sourcedId": "s1", "name": "Maple Elementary", "type": "school",
                      "identifier": "061", "parentSourcedId": "d2"}]}
    import_roster(db_session, bundles.write(orgs, modes={"orgs": "delta"}))
    assert _district_of(db_session, "ada.lovelace") == "d2"        # Maple's students went along
    assert _district_of(db_session, "grace.hopper") == "d2"
    assert _district_of(db_session, "kofi.mensah") == "d1"         # Lincoln stayed in d1
    assert _district_of(db_session, "priya.shah") == "d1"          # d1's own admin stays
    again = snapshot(db_session)
    import_roster(db_session, bundles.write(orgs, modes={"orgs": "delta"}))
    assert snapshot(db_session) == again                            # and a repeat changes nothing


def test_people_of_a_removed_district_keep_none_but_their_schools(db_session, bundles, roster_rows):
    import_roster(db_session, bundles.write(roster_rows))
    orgs = {"orgs": [{"sourcedId": "d2", "name": "Hillside Unified", "type": "district"},
                     {"sourcedId": "s1", "name": "Maple Elementary", "type": "school",
                      "identifier": "061", "parentSourcedId": "d2"},
                     {"sourcedId": "s2", "name": "Lincoln Middle", "type": "school",
                      "parentSourcedId": "d2"},
                     {"sourcedId": "d1", "status": "tobedeleted", "name": "Riverside Unified",
                      "type": "district"}]}
    import_roster(db_session, bundles.write(orgs, modes={"orgs": "delta"}))
    assert _district_of(db_session, "ada.lovelace") == "d2"
    assert _district_of(db_session, "priya.shah") is None           # and so no authority anywhere


def test_a_district_named_in_a_persons_row_stays_when_other_orgs_change(db_session, bundles, roster_rows):
    # Found by review: an admin of d1 who also teaches at a school of d2 became d2's admin at
    # an unrelated orgs delta, and d1's again at the next full import.
    roster_rows["orgs"].append({"sourcedId": "d2", "name": "Hillside Unified", "type": "district"})
    roster_rows["orgs"].append({"sourcedId": "s3", "name": "Hill School", "type": "school",
                                "parentSourcedId": "d2"})
    priya = next(u for u in roster_rows["users"] if u["sourcedId"] == "u5")
    priya["orgSourcedIds"] = "d1,s3"
    import_roster(db_session, bundles.write(roster_rows))
    assert _district_of(db_session, "priya.shah") == "d1"
    rename = {"orgs": [{"sourcedId": "s1", "name": "Maple Elementary School", "type": "school",
                        "identifier": "061", "parentSourcedId": "d1"}]}
    import_roster(db_session, bundles.write(rename, modes={"orgs": "delta"}))
    assert _district_of(db_session, "priya.shah") == "d1"


@pytest.mark.parametrize("orgs_of_priya, change, expected", [
    ("d1,s1", "s1 moves to d2", "d1"),          # her own district's school moving takes her nowhere
    ("d1,s3", "d1 is removed", None),           # admin of nothing, never of her school's d2
])
def test_a_district_admin_never_follows_a_school(db_session, bundles, roster_rows, orgs_of_priya,
                                                 change, expected):
    # Found by review: a district admin is one because their row names a district; following a
    # school made them admin of another district.
    roster_rows["orgs"] += [{"sourcedId": "d2", "name": "Hillside Unified", "type": "district"},
                            {"sourcedId": "s3", "name": "Hill School", "type": "school",
                             "parentSourcedId": "d2"}]
    next(u for u in roster_rows["users"] if u["sourcedId"] == "u5")["orgSourcedIds"] = orgs_of_priya
    import_roster(db_session, bundles.write(roster_rows))
    if change == "s1 moves to d2":
        delta = [{"sourcedId": "s1", "name": "Maple Elementary", "type": "school", "identifier": "061",
                  "parentSourcedId": "d2"}]
    else:
        delta = [{"sourcedId": "s1", "name": "Maple Elementary", "type": "school", "identifier": "061",
                  "parentSourcedId": "d2"},
                 {"sourcedId": "s2", "name": "Lincoln Middle", "type": "school", "parentSourcedId": "d2"},
                 {"sourcedId": "d1", "status": "tobedeleted", "name": "Riverside Unified",
                  "type": "district"}]
    import_roster(db_session, bundles.write({"orgs": delta}, modes={"orgs": "delta"}))
    assert _district_of(db_session, "priya.shah") == expected


def test_a_second_import_waits_for_the_first_and_plans_from_what_it_wrote(app, db_session, bundles,
                                                                          roster_rows, monkeypatch):
    # Found by review: a nightly import overlapping a manual one planned from rows the other
    # then changed, and failed with a raw IntegrityError (or applied a stale plan). The second
    # now waits for the first, and finds nothing left to do.
    import threading
    import time

    from portal.roster import importer
    folder = bundles.write(roster_rows)
    planned, other = importer.plan_import, {}

    def run_other():
        with app.app_context():
            try:
                other["summary"] = import_roster(db.session, folder)
            except Exception as e:  # noqa: BLE001  reported below
                other["error"] = e
            finally:
                db.session.remove()

    def plan_while_another_starts(bundle, state):
        if not other:
            other["thread"] = threading.Thread(target=run_other)
            other["thread"].start()
            time.sleep(0.5)  # it reaches the lock and waits there
        return planned(bundle, state)

    monkeypatch.setattr(importer, "plan_import", plan_while_another_starts)
    first = import_roster(db_session, folder)
    other["thread"].join(timeout=60)
    assert "error" not in other, other.get("error")
    assert first["people"].created == 7
    assert other["summary"]["people"].created == 0 and other["summary"]["people"].updated == 0


def _renamed_in_a_delta(db_session, bundles, school: str, name: str, *, parent: str) -> dict:
    """Import a delta orgs.csv of that one school, renamed; return the delta."""
    delta = {"orgs": [{"sourcedId": school, "name": name, "type": "school", "parentSourcedId": parent}]}
    import_roster(db_session, bundles.write(delta, modes={"orgs": "delta"}))
    db_session.expire_all()
    return delta


def test_a_delta_renames_a_school_under_a_region_the_portal_does_not_keep(db_session, bundles,
                                                                          roster_rows):
    # Found by review: local orgs (regions) are not kept, so a delta that changed only a school
    # under one was refused for naming a parent the database does not hold.
    roster_rows["orgs"] = [
        {"sourcedId": "d1", "name": "Riverside Unified", "type": "district"},
        {"sourcedId": "L1", "name": "North Region", "type": "local", "parentSourcedId": "d1"},
        {"sourcedId": "s1", "name": "Maple Elementary", "type": "school", "parentSourcedId": "L1"},
        {"sourcedId": "s2", "name": "Lincoln Middle", "type": "school", "parentSourcedId": "L1"},
    ]
    import_roster(db_session, bundles.write(roster_rows))
    delta = _renamed_in_a_delta(db_session, bundles, "s1", "Maple Elementary School", parent="L1")
    maple = db_session.scalar(select(School).where(School.sourced_id == "s1"))
    assert maple.name == "Maple Elementary School" and maple.district.sourced_id == "d1"
    # A new school under it cannot be placed: refused, naming why.
    delta["orgs"][0].update(sourcedId="s9", name="Oak Elementary")
    from portal.roster import RosterError
    with pytest.raises(RosterError) as caught:
        import_roster(db_session, bundles.write(delta, modes={"orgs": "delta"}))
    assert caught.value.problems == [
        'orgs.csv line 2: parentSourcedId "L1" is not in orgs.csv or the database']
    # Nor one under a new region whose own parent is unknown (found by review).
    delta = {"orgs": [
        {"sourcedId": "L9", "name": "East Region", "type": "local", "parentSourcedId": "STATE"},
        {"sourcedId": "s9", "name": "Oak Elementary", "type": "school", "parentSourcedId": "L9"}]}
    with pytest.raises(RosterError) as caught:
        import_roster(db_session, bundles.write(delta, modes={"orgs": "delta"}))
    assert caught.value.problems == [
        'orgs.csv line 2: parentSourcedId "STATE" is not in orgs.csv or the database']


def test_a_delta_keeps_the_district_of_a_school_under_another_school(db_session, bundles, roster_rows):
    # Found by review: renamed in a delta, a school whose parent is a school already here lost
    # its district, and its people theirs (district grants no longer reached them).
    roster_rows["orgs"][2]["parentSourcedId"] = "s1"
    import_roster(db_session, bundles.write(roster_rows))
    _renamed_in_a_delta(db_session, bundles, "s2", "Lincoln Middle School", parent="s1")
    lincoln = db_session.scalar(select(School).where(School.sourced_id == "s2"))
    kofi = db_session.scalar(select(Person).where(Person.sourced_id == "u6"))
    assert lincoln.name == "Lincoln Middle School" and lincoln.district.sourced_id == "d1"
    assert kofi.district_id == lincoln.district_id


def test_the_summary_names_teachers_and_students_in_classes_at_a_school_their_row_leaves_out(
        db_session, bundles, roster_rows):
    # A class is a teacher's, and a student its, only while their own row puts them at its school
    # (portal.badges.permissions): a delta that moves them and leaves the enrollment behind makes
    # the class nobody's to manage, and the import says so by username.
    summary = import_roster(db_session, bundles.write(roster_rows))
    assert not [line for line in summary.lines() if line.startswith("note:")]
    users = {row["username"]: row for row in roster_rows["users"]}
    moved = [dict(users["maria.rivera"], orgSourcedIds="s2"), dict(users["grace.hopper"], orgSourcedIds="s2")]
    summary = import_roster(db_session, bundles.write({"users": moved}, modes={"users": "delta"}))
    notes = [line for line in summary.lines() if line.startswith("note:")]
    assert notes == [
        "note: 1 teacher (maria.rivera) teaches classes at a school their users.csv row does not name "
        "(orgSourcedIds): they cannot see or act on those classes until it names the school",
        "note: 1 student (grace.hopper) is in classes at a school their users.csv row does not name "
        "(orgSourcedIds): those classes' teachers cannot see or act for them until it names the school"]
    # A teacher at both schools, and a full import that drops the enrollment, clear them.
    roster_rows["users"][2]["orgSourcedIds"] = "s1,s2"
    roster_rows["enrollments"] = [e for e in roster_rows["enrollments"] if e["userSourcedId"] != "u2"]
    roster_rows["users"][1]["orgSourcedIds"] = "s2"
    summary = import_roster(db_session, bundles.write(roster_rows))
    assert not [line for line in summary.lines() if line.startswith("note:")]


def _enrollments(db) -> dict[str, tuple[str, str]]:
    """Every enrollment's sourcedId -> (its person's sourcedId, its section's sourcedId)."""
    rows = db.execute(select(Enrollment.sourced_id, Person.sourced_id, Section.sourced_id)
                      .join(Person, Person.id == Enrollment.person_id)
                      .join(Section, Section.id == Enrollment.section_id)).all()
    return {e: (p, s) for e, p, s in rows}


def test_an_enrollment_moved_to_a_new_teacher_outlives_the_one_who_left(db_session, bundles, roster_rows):
    # Found by review: the teacher who left was removed before the enrollment that now names
    # the new teacher was updated, so the removal's cascade took the row first; the summary
    # said "updated", the class had no teacher, and the next import "created" it.
    import_roster(db_session, bundles.write(roster_rows))
    roster_rows["users"][2] = _user("u9", "jordan.park", "Jordan", "Park", role="teacher")
    roster_rows["enrollments"][2]["userSourcedId"] = "u9"

    summary = import_roster(db_session, bundles.write(roster_rows))

    assert counts(summary)["people"] == (1, 0, 1, 1)
    assert counts(summary)["enrollments"] == (0, 1, 0, 0)
    assert _enrollments(db_session)["e3"] == ("u9", "k1")
    assert counts(import_roster(db_session, bundles.write(roster_rows)))["enrollments"] == (0, 0, 0, 0)


def test_enrollments_moved_to_a_class_with_a_new_id_outlive_the_old_class(db_session, bundles, roster_rows):
    # A new school year's export often gives a class a new sourcedId, with the same enrollments.
    import_roster(db_session, bundles.write(roster_rows))
    roster_rows["classes"][0]["sourcedId"] = "k1b"
    for row in roster_rows["enrollments"][:3]:
        row["classSourcedId"] = "k1b"

    summary = import_roster(db_session, bundles.write(roster_rows))

    assert counts(summary)["sections"] == (1, 0, 1, 0)
    assert counts(summary)["enrollments"] == (0, 3, 0, 0)
    assert {e: v for e, v in _enrollments(db_session).items() if v[1] == "k1b"} == {
        "e1": ("u1", "k1b"), "e2": ("u2", "k1b"), "e3": ("u3", "k1b")}
    assert len(_enrollments(db_session)) == 5


def test_a_class_moved_to_a_new_school_outlives_the_school_that_closed(db_session, bundles, roster_rows):
    # Its id, and so its grants and its teacher's page, stay with it.
    import_roster(db_session, bundles.write(roster_rows))
    k2 = db_session.scalar(select(Section.id).where(Section.sourced_id == "k2"))
    roster_rows["orgs"][2] = {"sourcedId": "s3", "name": "Lincoln Academy", "type": "school",
                              "parentSourcedId": "d1"}
    roster_rows["classes"][1]["schoolSourcedId"] = "s3"
    for row in roster_rows["users"]:
        row["orgSourcedIds"] = row["orgSourcedIds"].replace("s2", "s3")
    for row in roster_rows["enrollments"][3:]:
        row["schoolSourcedId"] = "s3"

    summary = import_roster(db_session, bundles.write(roster_rows))

    assert counts(summary)["schools"] == (1, 0, 1, 0)
    assert counts(summary)["sections"] == (0, 1, 0, 0)
    moved = db_session.scalar(select(Section).where(Section.sourced_id == "k2"))
    assert (moved.id, moved.school.sourced_id) == (k2, "s3")
    assert _enrollments(db_session)["e4"] == ("u6", "k2") and _enrollments(db_session)["e5"] == ("u8", "k2")


def test_a_new_person_may_take_the_username_of_one_who_left(db_session, bundles, roster_rows):
    # Someone else (not the same child under a new sourcedId): removed and added, in one import.
    import_roster(db_session, bundles.write(roster_rows))
    roster_rows["users"][1] = _user("u9", "grace.hopper", "Gina", "Holt", grades="02", identifier="2002")
    roster_rows["enrollments"][1]["userSourcedId"] = "u9"

    summary = import_roster(db_session, bundles.write(roster_rows))

    assert counts(summary)["people"] == (1, 0, 1, 1)
    assert person(db_session, "u2") is None and person(db_session, "u9").username == "grace.hopper"
    assert _enrollments(db_session)["e2"] == ("u9", "k1")


def _school_notes(summary) -> list[str]:
    """The summary's note on enrollments whose school is not their class's, with its rows."""
    lines = summary.lines()
    start = next((i for i, line in enumerate(lines) if "enrollments.csv name" in line), len(lines))
    return lines[start:start + 1] + [line for line in lines[start + 1:] if line.startswith("  ")]


def _school_note(count: int) -> str:
    why = ("the portal goes by the class's school (a class's apps and teachers reach a student only "
           "at a school their users.csv row names)")
    if count == 1:
        return ("note: 1 enrollment in enrollments.csv names a school (schoolSourcedId) that is not "
                f"its class's: {why}; fix it in the student information system:")
    return (f"note: {count} enrollments in enrollments.csv name a school (schoolSourcedId) that is "
            f"not their class's: {why}; fix them in the student information system:")


def test_an_enrollment_naming_another_school_than_its_class_is_imported_and_named(
        db_session, bundles, roster_rows):
    # One file says one school and the other another: the class's school counts (for access too:
    # portal.models.roster.at_school), so the import goes on (refusing would also hold back the
    # removals and disables of the same export), and the summary names the rows by line and ids,
    # not by person.
    roster_rows["enrollments"][0]["schoolSourcedId"] = "s2"          # Ada in Room 4 (at s1)
    roster_rows["enrollments"].append(_enrollment("e6", "k2", "u2", school="s1"))  # Grace, Math 7 (s2)

    summary = import_roster(db_session, bundles.write(roster_rows))

    assert counts(summary)["enrollments"] == (6, 0, 0, 0)
    assert _enrollments(db_session)["e1"] == ("u1", "k1") and _enrollments(db_session)["e6"] == ("u2", "k2")
    notes = _school_notes(summary)
    assert notes == [_school_note(2),
                     '  enrollments.csv line 2: schoolSourcedId "s2", but class "k1" is at school "s1"',
                     '  enrollments.csv line 7: schoolSourcedId "s1", but class "k2" is at school "s2"']
    assert not any(word in line.lower() for line in notes for word in ("u1", "u2", "ada", "grace"))
    # The row's school gave Grace nothing at s1: Math 7 is at s2, which her row does not name.
    assert summary.students_elsewhere == ["grace.hopper"]
    # Said again while the export says it, though nothing changes.
    again = import_roster(db_session, bundles.write(roster_rows))
    assert not again.changed and _school_notes(again) == notes
    roster_rows["enrollments"][0]["schoolSourcedId"] = "s1"
    assert _school_notes(import_roster(db_session, bundles.write(roster_rows))) == [_school_note(1), notes[2]]
    roster_rows["enrollments"][5]["schoolSourcedId"] = "s2"
    assert _school_notes(import_roster(db_session, bundles.write(roster_rows))) == []


def test_the_note_on_enrollments_at_another_school_names_ten_rows_and_counts_the_rest(
        db_session, bundles, roster_rows):
    roster_rows["enrollments"] += [_enrollment(f"x{i}", "k1", "u1", school="s2") for i in range(12)]

    notes = _school_notes(import_roster(db_session, bundles.write(roster_rows)))

    assert notes == [_school_note(12)] + [
        f'  enrollments.csv line {line}: schoolSourcedId "s2", but class "k1" is at school "s1"'
        for line in range(7, 17)] + ["  and 2 more"]


def test_a_delta_enrollment_is_compared_with_its_class_in_the_database_or_in_the_delta(
        db_session, bundles, roster_rows):
    import_roster(db_session, bundles.write(roster_rows))
    enrollments = roster_rows["enrollments"]
    moved = dict(roster_rows["classes"][0], schoolSourcedId="s2")     # Room 4 moves to s2

    summary = import_roster(db_session, bundles.write(
        {"classes": [moved], "enrollments": [dict(enrollments[0], schoolSourcedId="s2"),  # k1: now right
                                             enrollments[1],                              # k1: now wrong
                                             dict(enrollments[3], schoolSourcedId="s1")]},  # k2 (stored)
        modes={"classes": "delta", "enrollments": "delta"}))

    assert _school_notes(summary) == [
        _school_note(2),
        '  enrollments.csv line 3: schoolSourcedId "s1", but class "k1" is at school "s2"',
        '  enrollments.csv line 4: schoolSourcedId "s1", but class "k2" is at school "s2"']
