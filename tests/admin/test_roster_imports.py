"""The roster's imports on the district admin's pages: the home page says when the roster was last
imported and what that did, and prominently when the latest attempt was refused, why, and what to
do; the audit log words both kinds. Another district's admin sees neither, teachers and school
admins no admin page at all."""
from __future__ import annotations

import copy
import re

import pytest
from sqlalchemy import event, select

from portal.models import District, Event, Person, Role
from portal.roster import RosterError, import_roster
from portal.roster.problems import REFUSALS, REMOVES_MANY
from tests.admin.test_review_fixes import _plan, _reads_no_whole_table, _statements
from tests.admin.test_shared_pages import _client, _text
from tests.factories import password_hash
from tests.roster.conftest import ROSTER, Bundles, _user

PASSWORD = "correct horse battery"
REFUSAL = '<div class="problem roster-refused" role="alert">'


class ImportedDistrict:
    """The small roster (tests.roster.conftest) and 60 more students, imported; its district
    admin (priya.shah), school admin (sam.okafor) and teacher (maria.rivera) with passwords."""

    def __init__(self, app, folder):
        self.app, self.bundles, self.rows = app, Bundles(folder), copy.deepcopy(ROSTER)
        self.rows["users"] += [_user(f"x{i}", f"kid{i}", "Kid", f"N{i}", grades="02") for i in range(60)]
        self.load(self.rows)
        with app.app_context():
            from portal.db import db
            for username in ("priya.shah", "sam.okafor", "maria.rivera"):
                db.session.scalar(select(Person).where(Person.username == username)).password_hash = \
                    password_hash(PASSWORD)
            db.session.commit()

    def load(self, rows, **kwargs) -> list[str]:
        """Import `rows` as the next bundle; the problems if it was refused."""
        return self.load_path(self.bundles.write(rows), **kwargs)

    def load_path(self, path, **kwargs) -> list[str]:
        from portal.db import db
        with self.app.app_context():
            try:
                import_roster(db.session, path, **kwargs)
            except RosterError as e:
                return e.problems
            return []

    def when(self, kind: str) -> str:
        """The latest event of `kind`, as the pages show a moment."""
        from portal.db import db
        from portal.local_time import local
        with self.app.app_context():
            at = db.session.scalar(select(Event.at).where(Event.kind == kind).order_by(Event.id.desc()).limit(1))
            return f"{local(at):%b %-d, %Y %H:%M %Z}"


@pytest.fixture
def district(app, tmp_path):
    return ImportedDistrict(app, tmp_path)


def _home(app, username="priya.shah"):
    page = _client(app, username).get("/admin/")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_the_home_page_says_when_the_roster_was_last_imported_and_what_it_did(app, district):
    page = _home(app)

    assert (f"Roster last imported {district.when('roster_imported')} (bundle1, full): 67 people added, "
            "1 skipped; 2 classes added; 5 enrollments added; 2 schools added; 1 district added.") in _text_of(page)
    assert REFUSAL not in page


def _text_of(html: str) -> str:
    import html as markup
    return re.sub(r"\s+", " ", markup.unescape(re.sub(r"<[^>]+>", " ", html)))


def test_a_refused_import_is_said_prominently_until_an_import_goes_through(app, district):
    rows = copy.deepcopy(district.rows)
    rows["users"], rows["enrollments"] = [], []
    assert district.load(rows)                                       # a cut-off export: refused

    page = _home(app)
    assert REFUSAL in page
    text = _text_of(page)
    assert (f"The roster import of {district.when('roster_refused')} was refused (bundle2): nothing in it was "
            f"imported, and the roster is as the import of {district.when('roster_imported')} left it. "
            f"Why: {REFUSALS[REMOVES_MANY].words} (1 problem). What to do: check users.csv in the export; if "
            "the removals are right, import again with --allow-removals. On the portal's server, portal roster "
            "import PATH (PATH: the export's file or folder) lists each problem by file and line.") in text
    assert "Roster last imported" in text and "(bundle1, full): 67 people added" in text

    rows = copy.deepcopy(district.rows)
    rows["users"][1]["username"] = "ada.lovelace"
    rows["users"][2]["role"] = "wizard"
    problems = district.load(rows)                                   # rows with problems: refused
    assert len(problems) == 2 and "ada.lovelace" in problems[1]
    text = _text_of(_home(app))
    assert (f"The roster import of {district.when('roster_refused')} was refused (bundle3)") in text
    assert ("Why: rows or columns with problems (a missing column, a bad value, or an id another file does not "
            "have) (2 problems). What to do: fix them in the student information system and export again.") in text
    assert "ada.lovelace" not in text and "wizard" not in text

    rows = copy.deepcopy(district.rows)
    rows["users"][0]["givenName"] = "Augusta"
    assert district.load(rows) == []                                 # the next night's goes through
    page = _home(app)
    assert REFUSAL not in page and "was refused" not in page
    assert (f"Roster last imported {district.when('roster_imported')} (bundle4, full): 1 person changed, "
            "1 skipped.") in _text_of(page)


def test_the_home_page_says_plainly_when_no_import_is_on_record(app, roster):
    roster.person("dee.admin", role=Role.district_admin, given="Dee", family="Admin")
    from portal.db import db
    db.session.commit()

    text = _text_of(_home(app, "dee.admin"))

    assert ("No roster import is on record yet: portal roster import PATH on the portal's server imports one."
            in text)


def test_no_other_district_sees_its_imports_nor_any_teacher_or_school_admin(app, district, tmp_path):
    rows = copy.deepcopy(district.rows)
    rows["users"], rows["enrollments"] = [], []
    assert district.load(rows)
    with app.app_context():
        from portal.db import db
        other = District(sourced_id="other-district", name="Other District")
        db.session.add(other)
        db.session.flush()
        db.session.add(Person(sourced_id="far", username="far.admin", role=Role.district_admin, given_name="Far",
                              family_name="Admin", district_id=other.id, password_hash=password_hash(PASSWORD)))
        db.session.commit()

    far = _client(app, "far.admin")
    home, log = _text_of(far.get("/admin/").get_data(as_text=True)), _log_rows(far.get("/admin/log"))
    assert "No roster import is on record yet" in home and "refused" not in home and "bundle" not in home
    assert "roster" not in log and "bundle" not in log
    assert "was refused (bundle2)" in _text_of(_home(app))
    for username in ("maria.rivera", "sam.okafor"):
        someone = _client(app, username)
        assert someone.get("/admin/").status_code == 403 and someone.get("/admin/log").status_code == 403

    # Now the portal has two districts: an import names neither, and is both districts' (the
    # roster is the whole portal's).
    assert district.load_path(tmp_path / "export-2026-03-10.zip")
    for username in ("far.admin", "priya.shah"):
        text = _text_of(_home(app, username))
        assert (f"The roster import of {district.when('roster_refused')} was refused (export-2026-03-10.zip)"
                in text), username
        assert "Why: the roster could not be read" in text


def test_the_log_words_the_imports_and_offers_them_as_kinds(app, district):
    rows = copy.deepcopy(district.rows)
    rows["users"], rows["enrollments"] = [], []
    assert district.load(rows)
    admin = _client(app, "priya.shah")

    page = admin.get("/admin/log")
    html, text = page.get_data(as_text=True), _text(page)
    assert '<option value="roster_imported">roster imported</option>' in html
    assert '<option value="roster_refused">roster import refused (nothing changed)</option>' in html
    assert ("roster import refused (nothing changed) the command line or the roster bundle: bundle2; mode: full; "
            f"problems: 1; refused by: {REFUSALS[REMOVES_MANY].words}") in text
    assert ("roster imported the command line or the roster bundle: bundle1; mode: full; districts added: 1; "
            "schools added: 2") in text
    assert "refusals" not in text and "removes_many" not in text and "district id" not in text

    only = _log_rows(admin.get("/admin/log?kind=roster_refused"))
    assert "roster import refused" in only and "roster imported" not in only and "signed in" not in only


def _log_rows(page) -> str:
    """The words of the log's table, without the form's list of kinds above it."""
    return _text_of(page.get_data(as_text=True).split("<tbody>")[-1])


def test_the_home_pages_roster_line_is_one_statement_along_the_index_of_events_about_no_one(app, district):
    # The audit table holds millions of sign-ins and launches at 100,000 students: the line reads
    # the few events by no one about no one of its two kinds, never the table.
    from portal.admin.imports import latest_imports
    from portal.db import db
    with app.app_context():
        rows = copy.deepcopy(district.rows)
        rows["users"], rows["enrollments"] = [], []
        assert district.load(rows)
        district_id = db.session.scalar(select(District.id))
        found = []
        listener = _statements(db.engine, found)
        try:
            imports = latest_imports(db.session, district_id)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert imports.accepted.bundle == "bundle1" and imports.refused.bundle == "bundle2"
        [(statement, params)] = found
        plan = _plan(statement, params)
        db.session.rollback()
    assert sum("ix_audit_event_no_one_kind_at" in step for step in plan) == 2, plan
    assert _reads_no_whole_table(plan), plan
