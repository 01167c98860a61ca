"""`portal roster import PATH`: a summary on success, reasons and a non-zero exit on bad input."""
from __future__ import annotations

from sqlalchemy import func, select

from portal.models import Person


def test_cli_import_prints_the_summary(runner, bundles, roster_rows, db_session):
    folder = bundles.write(roster_rows)

    result = runner.invoke(args=["roster", "import", str(folder)])

    assert result.exit_code == 0, result.output
    assert f"imported {folder}" in result.output
    assert "created" in result.output and "skipped" in result.output
    assert any(line.split() == ["people", "7", "0", "0", "1"]
               for line in result.output.splitlines())
    assert db_session.scalar(select(func.count(Person.id))) == 7

    again = runner.invoke(args=["roster", "import", str(folder)])
    assert again.exit_code == 0
    assert "nothing changed" in again.output


def test_the_summary_names_who_the_import_removed(runner, bundles, roster_rows, db_session):
    # Found by a walk-through: "people ... removed 1" did not say who, so an admin could not
    # check that the right person left.
    runner.invoke(args=["roster", "import", str(bundles.write(roster_rows))])
    roster_rows["users"] = [u for u in roster_rows["users"] if u["sourcedId"] not in ("u1", "u3")]
    roster_rows["enrollments"] = [e for e in roster_rows["enrollments"] if e["userSourcedId"] not in ("u1", "u3")]

    result = runner.invoke(args=["roster", "import", str(bundles.write(roster_rows))])

    assert result.exit_code == 0, result.output
    assert "removed: 2 people (ada.lovelace, maria.rivera): they can no longer sign in" in result.output
    again = runner.invoke(args=["roster", "import", str(bundles.write(roster_rows))])
    assert "removed:" not in again.output


def test_cli_refuses_bad_bundle_with_reasons(runner, bundles, roster_rows, db_session):
    roster_rows["users"][0]["role"] = "wizard"
    roster_rows["users"][1]["username"] = ""

    result = runner.invoke(args=["roster", "import", str(bundles.write(roster_rows))])

    assert result.exit_code != 0
    assert "nothing changed" in result.output
    assert 'users.csv line 2: role "wizard" is not one of' in result.output
    assert "users.csv line 3: username is empty" in result.output
    assert "Traceback" not in result.output
    assert db_session.scalar(select(func.count(Person.id))) == 0


def test_cli_refuses_a_path_that_does_not_exist(runner, tmp_path):
    result = runner.invoke(args=["roster", "import", str(tmp_path / "missing.zip")])

    assert result.exit_code != 0
    assert "missing.zip: there is no such file or folder" in result.output
    assert "Traceback" not in result.output


def test_an_import_that_would_remove_most_people_is_refused_until_asked_for(runner, bundles,
                                                                            roster_rows, db_session):
    # Found by review: a users.csv cut off after its header removed everyone, admins included,
    # and their records of what apps received. A quarter or more (50 at least) must be asked for.
    from tests.roster.conftest import _user
    full = [*roster_rows["users"], *(_user(f"x{i}", f"kid{i}", "Kid", f"N{i}", grades="02")
                                     for i in range(60))]
    roster_rows["users"] = full
    assert runner.invoke(args=["roster", "import", str(bundles.write(roster_rows))]).exit_code == 0
    people = db_session.scalar(select(func.count(Person.id)))
    assert people == 67

    roster_rows["users"] = []
    roster_rows["enrollments"] = []
    cut_off = str(bundles.write(roster_rows))
    refused = runner.invoke(args=["roster", "import", cut_off])
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    assert ("this import would remove 67 of the 67 people in the portal (100%)" in refused.output
            and "--allow-removals" in refused.output and "nothing changed" in refused.output)
    assert db_session.scalar(select(func.count(Person.id))) == people

    # Nor can `portal demo` (a wrong PORTAL_DATABASE_URL) remove a real district's people.
    demo = runner.invoke(args=["demo", "--students", "20"])
    assert demo.exit_code != 0 and "this import would remove 67 of" in demo.output
    assert db_session.scalar(select(func.count(Person.id))) == people

    # A year-end's graduates (fewer than a quarter) pass; so does a large removal asked for.
    roster_rows["users"] = full[:-16]
    assert runner.invoke(args=["roster", "import", str(bundles.write(roster_rows))]).exit_code == 0
    asked = runner.invoke(args=["roster", "import", cut_off, "--allow-removals"])
    assert asked.exit_code == 0, asked.output
    assert db_session.scalar(select(func.count(Person.id))) == 0


def test_the_cli_names_enrollments_at_another_school_and_access_goes_by_the_class(
        runner, bundles, roster_rows, db_session):
    from portal import access
    from portal.models import App
    from tests.admin.helpers import cli
    from tests.roster.conftest import _enrollment
    roster_rows["enrollments"][0]["schoolSourcedId"] = "s2"          # Ada in Room 4 (at s1)
    roster_rows["enrollments"].append(_enrollment("e6", "k2", "u2", school="s1"))  # Grace, Math 7 (s2)

    output = cli(runner, "roster", "import", bundles.write(roster_rows))

    assert ("note: 2 enrollments in enrollments.csv name a school (schoolSourcedId) that is not "
            "their class's: the portal goes by the class's school" in output)
    assert '\n  enrollments.csv line 2: schoolSourcedId "s2", but class "k1" is at school "s1"\n' in output
    assert '\n  enrollments.csv line 7: schoolSourcedId "s1", but class "k2" is at school "s2"\n' in output
    # A class's apps: Ada has Room 4's (her row puts her at its school, whatever the enrollment
    # says); the row saying s1 gives Grace nothing of Math 7 (at s2, which her row does not name).
    for title, section in (("Room 4 Reading", "k1"), ("Math 7 Practice", "k2")):
        cli(runner, "apps", "add-link", title, f"https://apps.example/{section}")
        cli(runner, "apps", "grant", title, "--section", section)
    apps = {app.name: app for app in db_session.scalars(select(App))}
    people = {p.sourced_id: p for p in db_session.scalars(select(Person))}
    assert access.may_launch(db_session, people["u1"], apps["Room 4 Reading"])
    assert not access.may_launch(db_session, people["u2"], apps["Math 7 Practice"])
    assert access.may_launch(db_session, people["u8"], apps["Math 7 Practice"])   # Lee: at s2
