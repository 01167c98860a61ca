"""`portal apps add-link`, `grant` and `list` (portal/admin/services.py): what an admin types is
checked and stored in the roster's words, and bad input is refused in one line, changing nothing."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal import access
from portal.db import db
from portal.models import App, Grant
from tests.admin.helpers import cli, refused


@pytest.fixture
def pupils(roster, runner):
    """Kim in kindergarten and Tom in grade 03 at Maple, and a link app granted to nobody yet."""
    maple = roster.school("maple", "Maple Elementary")
    roster.school("long", "The Very Long Named Academy Of Arts, Sciences And Letters")
    room = roster.section(maple, "4a", title="Room 4A Reading")
    kim = roster.person("kim", schools=[maple], grades="KG")
    tom = roster.person("tom", schools=[maple], sections=[room], grades="03")
    cli(runner, "apps", "add-link", "Story Time", "https://stories.example/")
    return kim, tom


def story_time() -> App:
    db.session.expire_all()
    return db.session.scalar(select(App).where(App.name == "Story Time"))


def grant_count() -> int:
    return db.session.scalar(select(func.count(Grant.id)))


@pytest.mark.parametrize("typed, stored, who", [
    ("3", "03", "tom"), ("03", "03", "tom"), (" 03 ", "03", "tom"),
    ("kg", "KG", "kim"), ("Kg", "KG", "kim"), ("KG", "KG", "kim"),
])
def test_grade_is_stored_as_the_roster_writes_it(runner, pupils, typed, stored, who):
    out = cli(runner, "apps", "grant", "Story Time", "--grade", typed)
    assert f"granted Story Time to: grade {stored}" in out
    app = story_time()
    assert [g.grade for g in app.grants] == [stored]
    kim, tom = pupils
    person = {"kim": kim, "tom": tom}[who]
    other = tom if person is kim else kim
    assert access.may_launch(db.session, person, app)
    assert not access.may_launch(db.session, other, app)


@pytest.mark.parametrize("typed", ["PK", "pk", "13", "other", "UG"])
def test_every_oneroster_grade_is_accepted(runner, pupils, typed):
    cli(runner, "apps", "grant", "Story Time", "--grade", typed)


@pytest.mark.parametrize("typed, reason", [
    ("KG, 01", "one grade"),
    ("03,04", "one grade"),
    ("14", "OneRoster grade"),
    ("0", "OneRoster grade"),
    ("003", "OneRoster grade"),
    ("3rd", "OneRoster grade"),
    ("kindergarten", "OneRoster grade"),
    ("\u0663", "OneRoster grade"),  # an Arabic-Indic three: a digit, but not a roster code
    ("G" * 30, "OneRoster grade"),  # longer than the column (a traceback on PostgreSQL)
    ("", "OneRoster grade"),        # with --school, an empty grade is not silently dropped
    ("03\n04", "OneRoster grade"),
])
def test_a_grade_that_is_not_a_roster_code_is_refused(runner, pupils, typed, reason):
    before = cli(runner, "apps", "list")
    extra = ["--school", "maple"] if typed == "" else []
    assert reason in refused(runner, "apps", "grant", "Story Time", "--grade", typed, *extra)
    assert cli(runner, "apps", "list") == before
    assert grant_count() == 0


def test_the_same_grant_twice_is_refused(runner, pupils):
    cli(runner, "apps", "grant", "Story Time", "--school", "maple", "--grade", "3")
    assert "already granted" in refused(runner, "apps", "grant", "Story Time",
                                        "--school", "maple", "--grade", "03")
    assert grant_count() == 1
    # A grant that differs in any criterion is a different group.
    cli(runner, "apps", "grant", "Story Time", "--school", "maple")
    cli(runner, "apps", "grant", "Story Time", "--school", "maple", "--grade", "03", "--role", "student")
    assert "already granted" in refused(runner, "apps", "grant", "Story Time", "--school", "maple")
    assert grant_count() == 3


def test_apps_list_names_schools_and_sections_as_an_admin_types_them(runner, pupils):
    cli(runner, "apps", "grant", "Story Time", "--school", "maple", "--grade", "kg")
    cli(runner, "apps", "grant", "Story Time", "--section", "4a")
    cli(runner, "apps", "grant", "Story Time", "--school", "long")
    grants = cli(runner, "apps", "list").strip().split("\t")[3]
    assert grants == ("school maple (Maple Elementary), grade KG; section 4a (Room 4A Reading); "
                      "school long")
    ids = [str(i) for i in db.session.scalars(select(Grant.school_id).union(select(Grant.section_id)))
           if i is not None]
    for words in grants.replace(";", ",").split(","):
        assert words.split()[-1] not in ids  # never our database ids


def test_grant_says_whom_it_granted_in_the_roster_words(runner, pupils):
    out = cli(runner, "apps", "grant", "Story Time", "--section", "4a", "--role", "student")
    assert out.strip() == "granted Story Time to: section 4a (Room 4A Reading), role student"


# --- URLs an admin registers ------------------------------------------------------------------

HOSTILE_URLS = [
    ("https://nl.example/a\nb", "line breaks"),
    ("https://nl.example/a\r\nLocation: https://evil.example/", "line breaks"),
    ("https://tab.example/a\tb", "line breaks"),
    ("https://sp ace.example/", "line breaks"),
    ("https://nul.example/a\x00b", "invisible"),
    ("https://del.example/a\x7fb", "invisible"),
    ("https://nbsp.example/a\xa0b", "invisible"),
    ("https://bidi.example/\u202egpj.exe", "invisible"),
    ("https://zw.example/a\u200bb", "invisible"),
    ("https://[not-ipv6/", "malformed"),
    ("https://port.example:99999/", "malformed"),
    ("https://long.example/" + "a" * 2048, "longer than 2048"),
    ("javascript:alert(1)", "must start with https://"),
]


@pytest.mark.parametrize("url, reason", HOSTILE_URLS)
def test_a_link_url_with_hidden_characters_or_no_address_is_refused(runner, roster, url, reason):
    assert reason in refused(runner, "apps", "add-link", "Sneaky", url)
    assert db.session.scalar(select(func.count(App.id))) == 0


def test_a_link_url_pasted_with_a_trailing_newline_is_kept_without_it(runner, roster):
    cli(runner, "apps", "add-link", "Pasted", "https://pasted.example/\n")
    assert db.session.scalar(select(App.url).where(App.name == "Pasted")) == "https://pasted.example/"


@pytest.mark.parametrize("option", ["--acs-url", "--relay-state"])
@pytest.mark.parametrize("url, reason", HOSTILE_URLS[:9])
def test_saml_urls_with_hidden_characters_are_refused(runner, roster, option, url, reason):
    args = ["apps", "add-saml", "Sneaky SP", "--entity-id", "https://sp.example/"]
    args += [option, url] if option == "--acs-url" else ["--acs-url", "https://sp.example/acs",
                                                        option, url]
    assert reason in refused(runner, *args)
    assert db.session.scalar(select(func.count(App.id))) == 0


@pytest.mark.parametrize("name, reason", [
    ("N" * 256, "at most 255 characters"),  # longer than the column (a traceback on PostgreSQL)
    ("Story\tTime", "one line of plain text"),
    ("Story\nTime", "one line of plain text"),
])
def test_an_app_name_the_portal_cannot_show_is_refused(runner, roster, name, reason):
    assert reason in refused(runner, "apps", "add-link", name, "https://n.example/")
    assert db.session.scalar(select(func.count(App.id))) == 0


def test_a_grant_to_a_class_of_another_school_is_refused(runner, roster, pupils):
    oak = roster.school("oak", "Oak Middle")
    roster.section(oak, "7b", title="Oak 7B")
    before = grant_count()
    reason = refused(runner, "apps", "grant", "Story Time", "--school", "maple", "--section", "7b")
    assert "is not a class of school 'maple'" in reason
    assert grant_count() == before
    assert "granted Story Time to" in cli(runner, "apps", "grant", "Story Time", "--school", "maple",
                                   "--section", "4a")


def test_a_saml_apps_nameid_field_cannot_be_taken_away(runner, roster):
    cli(runner, "apps", "add-saml", "Math Garden", "--entity-id", "https://math.test/sp",
        "--acs-url", "https://math.test/acs", "--nameid", "username")
    reason = refused(runner, "apps", "release", "Math Garden", "given_name")
    assert "knows its students by their username" in reason and "nothing changed" in reason
    db.session.expire_all()
    assert "username" in db.session.scalar(select(App).where(App.name == "Math Garden")).released_fields
    assert "receives" in cli(runner, "apps", "release", "Math Garden", "given_name", "username")


def test_a_district_may_send_an_app_shared_with_another_district_fewer_fields(roster, runner):
    from portal.admin.services import AdminError, grant_app, release_fields
    from portal.models import District, Person, Role, School
    maple = roster.school("maple", "Maple Elementary")
    other = District(sourced_id="d2", name="Bayside")
    db.session.add(other)
    db.session.flush()
    db.session.add(School(sourced_id="bay", name="Bayside Elementary", district_id=other.id))
    admin = roster.person("admin.a", schools=[maple], role=Role.district_admin)
    db.session.add(Person(sourced_id="admin-b", username="admin.b", given_name="B", family_name="Admin",
                          role=Role.district_admin, district_id=other.id, enabled=True,
                          email="", student_number="", grades=""))
    db.session.commit()
    cli(runner, "apps", "add-link", "Reading", "https://reading.example/")
    grant_app(db.session, "Reading", school="bay")
    grant_app(db.session, "Reading", school="maple")
    release_fields(db.session, "Reading", ["given_name", "grade"])
    with pytest.raises(AdminError, match="you may send it fewer fields"):
        release_fields(db.session, "Reading", ["given_name", "grade", "email"], actor=admin)
    fewer = release_fields(db.session, "Reading", ["given_name"], actor=admin)
    assert fewer.released_fields == ["given_name"]
    # An app open to no one yet is the operator's to set up.
    cli(runner, "apps", "add-link", "Nobody Yet", "https://nobody.example/")
    with pytest.raises(AdminError, match="not open to your district"):
        release_fields(db.session, "Nobody Yet", ["given_name", "email"], actor=admin)
    # A district the app is not open to decides nothing about it, not even fewer fields.
    cli(runner, "apps", "add-link", "Bay Only", "https://bay.example/")
    grant_app(db.session, "Bay Only", school="bay")
    release_fields(db.session, "Bay Only", ["given_name", "grade"])
    with pytest.raises(AdminError, match="not open to your district"):
        release_fields(db.session, "Bay Only", [], actor=admin)
    assert db.session.scalar(
        select(App).where(App.name == "Bay Only")).released_fields == ["given_name", "grade"]


def test_two_admins_granting_the_same_group_at_once_store_one_grant(app, pupils):
    # Both found no such grant and both stored one: removing "the" grant left the app granted.
    from portal.admin.services import AdminError, grant_app
    from tests.admin.helpers import at_the_same_moment
    first, second = at_the_same_moment(app, Grant, *[lambda: grant_app(db.session, "Story Time", grade="03")] * 2)
    refused_one = first if isinstance(first, Exception) else second
    assert isinstance(refused_one, AdminError), (first, second)
    assert str(refused_one) == "Story Time is already granted to exactly that group; nothing changed"
    db.session.expire_all()
    assert grant_count() == 1
    cli(app.test_cli_runner(), "apps", "ungrant", "Story Time", "--grade", "03")
    assert grant_count() == 0


def test_the_database_refuses_a_second_grant_to_the_same_group(app, runner, pupils):
    # What the index holds, as _same_grant reads a group: NULLs equal, and a school names its
    # district (a grant stored with both, as --district --school once made it, is the same group).
    from sqlalchemy.exc import IntegrityError

    from portal.models import School
    app_id = story_time().id
    maple = db.session.scalar(select(School).where(School.sourced_id == "maple"))
    db.session.add(Grant(app_id=app_id, school_id=maple.id, district_id=maple.district_id, grade="03"))
    db.session.commit()
    for same in (dict(school_id=maple.id, grade="03"), dict(school_id=maple.id, district_id=maple.district_id, grade="03")):
        db.session.add(Grant(app_id=app_id, **same))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
    assert "already granted to exactly that group" in refused(runner, "apps", "grant", "Story Time",
                                                             "--school", "maple", "--grade", "03")
    cli(runner, "apps", "grant", "Story Time", "--school", "maple")        # another group
    cli(runner, "apps", "grant", "Story Time", "--grade", "03")            # and another
    assert grant_count() == 3
