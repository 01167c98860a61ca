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
