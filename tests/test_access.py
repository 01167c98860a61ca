"""Who sees which tiles, who may launch what, and what each app receives (portal/access.py),
with apps and grants made through the `portal apps ...` commands."""
import base64
import re
import unicodedata

import pytest
from sqlalchemy import select

from portal import access
from portal.badges.sheets import badge_name
from portal.db import db
from portal.models import App, Event, Role
from tests.admin.helpers import cli, refused
from tests.auth.helpers import isolated_client, page_without_csrf


@pytest.fixture
def client(app):
    return isolated_client(app)


@pytest.fixture
def school_day(roster, runner):
    """Ada: a grade 02 student at Maple (sections 4A), next to Oak and a grade 05 class."""
    maple, oak = roster.school("maple", "Maple Elementary"), roster.school("oak", "Oak Elementary")
    room4a = roster.section(maple, "4a", grades="02")
    roster.section(maple, "5b", grades="05")
    roster.section(oak, "oak-2", grades="02")
    ada = roster.person("ada.lovelace", schools=[maple], sections=[room4a], grades="02")

    granted = {
        "Maple Library": ["--school", "maple"],
        "Grade Two Math": ["--grade", "02"],
        "Room 4A Reading": ["--section", "4a"],
        "Student Mail": ["--role", "student"],
        "District News": ["--district"],
        "Maple Second Grade": ["--school", "maple", "--grade", "02", "--role", "student"],
    }
    not_granted = {
        "Oak Library": ["--school", "oak"],
        "Grade Five Science": ["--grade", "05"],
        "Room 5B Art": ["--section", "5b"],
        "Teacher Planner": ["--role", "teacher"],
        "Maple Fifth Grade": ["--school", "maple", "--grade", "05"],   # one criterion fails
        "Oak Second Grade": ["--school", "oak", "--grade", "02"],       # the other one fails
        "Never Granted": None,
    }
    for name, grant in {**granted, **not_granted}.items():
        slug = name.lower().replace(" ", "-")
        cli(runner, "apps", "add-link", name, f"https://apps.example/{slug}")
        if grant:
            cli(runner, "apps", "grant", name, *grant)
    return ada, sorted(granted), sorted(not_granted)


def test_student_sees_exactly_the_apps_granted_to_them(school_day):
    ada, granted, _ = school_day
    assert [app.name for app in access.apps_for(db.session, ada)] == granted


def test_tiles_page_shows_granted_apps_only(client, auth, school_day):
    _, granted, not_granted = school_day
    auth.login()
    html = client.get("/").get_data(as_text=True)
    for name in granted:
        assert f'<span class="name">{name}</span>' in html
    for name in not_granted:
        assert name not in html


def test_a_grant_must_match_every_criterion_it_names(school_day):
    ada, _, _ = school_day
    for name, expected in [("Maple Second Grade", True), ("Maple Fifth Grade", False),
                           ("Oak Second Grade", False), ("Never Granted", False)]:
        app = db.session.scalar(select(App).where(App.name == name))
        assert access.may_launch(db.session, ada, app) is expected, name


def test_a_teacher_sees_teacher_grants_not_student_ones(roster, school_day):
    maple = db.session.scalar(select(App).where(App.name == "Maple Library"))
    assert maple is not None
    from portal.models import School
    school = db.session.scalar(select(School).where(School.sourced_id == "maple"))
    teacher = roster.person("mr.rogers", role=Role.teacher, schools=[school], grades="")
    names = [app.name for app in access.apps_for(db.session, teacher)]
    assert names == ["District News", "Maple Library", "Teacher Planner"]


def test_disabled_person_sees_nothing_and_launches_nothing(roster, school_day):
    ada, _, _ = school_day
    ada.enabled = False
    db.session.commit()
    assert access.apps_for(db.session, ada) == []
    for app in db.session.scalars(select(App)):
        assert not access.may_launch(db.session, ada, app)


def test_launch_opens_a_granted_link_app_and_records_it(client, auth, school_day):
    ada, _, _ = school_day
    auth.login()
    response = client.get("/launch/maple-library")
    assert response.status_code == 302
    assert response.headers["Location"] == "https://apps.example/maple-library"
    db.session.rollback()
    launches = list(db.session.scalars(select(Event).where(Event.kind == "launch",
                                                           Event.person_id == ada.id)))
    assert len(launches) == 1


def test_launching_an_app_not_granted_reads_exactly_like_an_unknown_app(client, auth, school_day):
    auth.login()
    not_granted = client.get("/launch/oak-library")
    unknown = client.get("/launch/no-such-app")
    assert not_granted.status_code == unknown.status_code == 404
    assert page_without_csrf(not_granted) == page_without_csrf(unknown)


def test_launch_needs_a_signed_in_person(client, school_day):
    response = client.get("/launch/maple-library")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_apps_list_shows_kind_url_and_grants(runner, school_day):
    out = cli(runner, "apps", "list")
    lines = {line.split("\t")[0]: line.split("\t") for line in out.strip().splitlines()}
    assert lines["Maple Library"][1:3] == ["link", "https://apps.example/maple-library"]
    assert "not granted to anyone" in lines["Never Granted"][3]
    assert "grade 02" in lines["Maple Second Grade"][3] and "role student" in lines["Maple Second Grade"][3]


def test_apps_list_on_an_empty_portal_says_what_to_do(runner, roster):
    assert "portal apps add-link" in cli(runner, "apps", "list")


# The smallest valid PNG: one transparent pixel.
PIXEL_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")


def test_add_link_with_an_icon_keeps_it_in_the_portal(client, auth, roster, runner, tmp_path):
    school = roster.school("maple")
    roster.person("ada.lovelace", schools=[school])
    icon = tmp_path / "story.png"
    icon.write_bytes(PIXEL_PNG)
    cli(runner, "apps", "add-link", "Story Time", "https://stories.example/", "--icon", str(icon))
    cli(runner, "apps", "grant", "story-time", "--school", "maple")
    auth.login()
    html = client.get("/").get_data(as_text=True)
    assert "stories.example/icon" not in html
    src = re.search(r'<img src="(/apps/story-time/icon\?v=[0-9a-f]{12})" alt="" class="icon">', html)
    assert src, "the tile shows the icon the portal keeps"
    icon_response = client.get(src.group(1).replace("&amp;", "&"))
    assert icon_response.status_code == 200
    assert icon_response.data == PIXEL_PNG and icon_response.mimetype == "image/png"
    assert "max-age" in icon_response.headers["Cache-Control"]  # the browser keeps it
    assert client.get("/apps/no-such-app/icon").status_code == 404


def test_icon_of_an_app_not_granted_reads_exactly_like_an_unknown_app(client, auth, roster, runner,
                                                                      tmp_path):
    maple = roster.school("maple")
    roster.school("oak", "Oak Elementary")
    roster.person("ada.lovelace", schools=[maple])
    icon = tmp_path / "icon.png"
    icon.write_bytes(PIXEL_PNG)
    for name, school in [("Story Time", "maple"), ("Oak Secrets", "oak"), ("Hidden", None)]:
        cli(runner, "apps", "add-link", name, "https://apps.example/", "--icon", icon)
        if school:
            cli(runner, "apps", "grant", name, "--school", school)
    version = db.session.scalar(select(App.icon_version).where(App.slug == "oak-secrets"))
    auth.login()
    assert client.get(f"/apps/story-time/icon?v={version}").data == PIXEL_PNG
    unknown = client.get(f"/apps/no-such-app/icon?v={version}")
    for slug in ("oak-secrets", "hidden"):
        response = client.get(f"/apps/{slug}/icon?v={version}")
        assert response.status_code == unknown.status_code == 404
        assert page_without_csrf(response) == page_without_csrf(unknown)
        assert "max-age" not in response.headers.get("Cache-Control", "")


def test_icons_need_a_signed_in_person(client, roster, runner, tmp_path):
    icon = tmp_path / "icon.png"
    icon.write_bytes(PIXEL_PNG)
    cli(runner, "apps", "add-link", "Story Time", "https://stories.example/", "--icon", icon)
    cli(runner, "apps", "grant", "Story Time", "--district")
    response = client.get("/apps/story-time/icon")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_remote_or_bogus_icons_are_refused(runner, roster, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    big = tmp_path / "big.png"
    big.write_bytes(PIXEL_PNG + b"\0" * (70 * 1024))
    video = tmp_path / "video.png"      # a 4 GB file by mistake (sparse: no disk used)
    with open(video, "wb") as f:
        f.truncate(4 * 1024 ** 3)
    for icon, reason in [("https://stories.example/icon.png", "download the icon"),
                         (str(tmp_path / "missing.png"), "no icon file"),
                         (str(text), "not a PNG"), (str(big), "larger than 64 KB"),
                         (str(video), "larger than 64 KB")]:
        assert reason in refused(runner, "apps", "add-link", "Story Time",
                                 "https://stories.example/", "--icon", icon)
    assert "no apps yet" in cli(runner, "apps", "list")


@pytest.mark.parametrize("args, reason", [
    (["apps", "add-link", "Story Time", "ftp://stories.example/"], "must start with https://"),
    (["apps", "add-link", "Story Time", "not a url"], "must start with https://"),
    (["apps", "add-link", "Story Time", "https://s.example/", "--icon", "javascript:x"], "no icon file"),
    (["apps", "add-link", "  ", "https://s.example/"], "needs a name"),
    (["apps", "add-link", "Maple Library", "https://other.example/"], "exists already"),
    (["apps", "grant", "No Such App", "--school", "maple"], "no app called"),
    (["apps", "grant", "Maple Library"], "say who gets the app"),
    (["apps", "grant", "Maple Library", "--school", "elm"], "no school with id 'elm'"),
    (["apps", "grant", "Maple Library", "--section", "9z"], "no section with id '9z'"),
    (["apps", "grant", "Maple Library", "--role", "janitor"], "role must be one of"),
    (["apps", "release", "Maple Library", "shoe_size"], "unknown field 'shoe_size'"),
    (["apps", "release", "No Such App", "email"], "no app called"),
])
def test_apps_commands_refuse_bad_input_in_one_line(runner, school_day, args, reason):
    before = cli(runner, "apps", "list")
    assert reason in refused(runner, *args)
    assert cli(runner, "apps", "list") == before  # nothing changed


# --- what an app receives ---------------------------------------------------------------------

def claims(app_name, person, settings):
    app = db.session.scalar(select(App).where(App.name == app_name))
    return access.released_claims(db.session, person, app, pairwise_key=settings.pairwise_key)


def test_apps_receive_the_least_by_default(school_day, settings):
    ada, _, _ = school_day
    assert claims("Maple Library", ada, settings) == {
        "subject": claims("Maple Library", ada, settings)["subject"],
        "given_name": "Ada",
        "family_name_initial": "L",
    }


@pytest.mark.parametrize("family, initial", [
    ("de la Cruz", "D"),                            # was "d"
    ("'t Hooft", "T"),                              # was "'"
    ("\u200fכהן", "כ"),                             # was the invisible right-to-left mark
    (unicodedata.normalize("NFD", "Ñúñez"), "Ñ"),   # was "N"
    ("A\u0301lvarez", "Á"),
    ("ใจดี", "จ"),                                   # the consonant, not the vowel written before it
    ("-", None),                                    # was "-": no letter, no initial
    (".", None),
])
def test_family_name_initial_is_the_one_on_the_badge(school_day, settings, family, initial):
    # Found by review: apps got family_name[:1] while the badge printed family_initial().
    ada, _, _ = school_day
    ada.family_name = family
    got = claims("Maple Library", ada, settings)
    assert got.get("family_name_initial") == initial
    assert set(got) == {"subject", "given_name"} | ({"family_name_initial"} if initial else set())
    assert badge_name(ada) == (f"Ada {initial}." if initial else "Ada")


@pytest.mark.parametrize("given, family, names", [
    ("Madonna", "", {"given_name": "Madonna", "display_name": "Madonna"}),
    ("", "Suharto", {"family_name": "Suharto", "family_name_initial": "S", "display_name": "Suharto"}),
])
def test_a_person_with_one_name_is_sent_no_empty_name(runner, school_day, settings, given, family,
                                                      names):
    ada, _, _ = school_day
    cli(runner, "apps", "release", "Maple Library", "given_name", "family_name",
        "family_name_initial", "display_name")
    db.session.expire_all()
    ada.given_name, ada.family_name = given, family
    got = claims("Maple Library", ada, settings)
    assert {k: v for k, v in got.items() if k != "subject"} == names


def test_apps_release_sets_exactly_what_an_app_receives(runner, school_day, settings):
    ada, _, _ = school_day
    out = cli(runner, "apps", "release", "Maple Library", "grade", "school_id", "sections", "username")
    assert "Maple Library receives: subject," in out
    db.session.expire_all()
    got = claims("Maple Library", ada, settings)
    assert set(got) == {"subject", "grade", "school_id", "sections", "username"}
    assert got["grade"] == ["02"] and got["school_id"] == ["maple"] and got["sections"] == ["4a"]
    assert got["username"] == "ada.lovelace"
    # The other apps are untouched.
    assert set(claims("Student Mail", ada, settings)) == {"subject", "given_name", "family_name_initial"}


def test_subject_is_pairwise_stable_per_app_and_different_across_apps(roster, school_day, settings):
    ada, _, _ = school_day
    grace = roster.person("grace.hopper", given="Grace", family="Hopper")
    library = claims("Maple Library", ada, settings)["subject"]
    assert library == claims("Maple Library", ada, settings)["subject"]
    assert library != claims("Student Mail", ada, settings)["subject"]
    assert library != claims("Maple Library", grace, settings)["subject"]
    for value in ("ada", "lovelace", ada.sourced_id, str(ada.id)):
        assert value not in library


def test_a_class_the_roster_left_behind_at_a_school_the_student_left_gives_nothing(
        runner, school_day, settings):
    # Ada moved to Oak, but the roster still lists her in Maple's Room 4A: Room 4A's apps are no
    # longer hers, and no app hears of the class (as her old teacher no longer has her).
    from portal.models import PersonSchool, School
    ada, _, _ = school_day
    cli(runner, "apps", "release", "Student Mail", "sections")
    db.session.expire_all()
    assert claims("Student Mail", ada, settings)["sections"] == ["4a"]
    maple = db.session.scalar(select(School).where(School.sourced_id == "maple"))
    oak = db.session.scalar(select(School).where(School.sourced_id == "oak"))
    db.session.delete(db.session.get(PersonSchool, (ada.id, maple.id)))
    db.session.add(PersonSchool(person_id=ada.id, school_id=oak.id))
    db.session.commit()
    names = [app.name for app in access.apps_for(db.session, ada)]
    assert "Room 4A Reading" not in names and "Oak Library" in names and "Student Mail" in names
    reading = db.session.scalar(select(App).where(App.name == "Room 4A Reading"))
    assert not access.may_launch(db.session, ada, reading)
    assert claims("Student Mail", ada, settings)["sections"] == []
