"""The district admin's pages (portal.admin.views): the apps, who may open each, what each
receives, and what was shared, per app and per person, read back from real launches."""
from __future__ import annotations

import html
import re

import pytest

from portal.models import Role
from tests.sso.conftest import register_and_grant

PASSWORD = "correct horse battery"


def _text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))))


def _client(app, username):
    from tests.badges.conftest import login, new_client
    client = new_client(app)
    login(client, username)
    return client


@pytest.fixture
def shared(app, roster, runner):
    """A district with a SAML app (releasing grade and school too) and a link app, each opened
    by Ada; Grace opens nothing. A second district's admin and student."""
    from portal.admin.services import release_fields
    from portal.db import db
    from portal.models import District
    school = roster.school("sch-maple", "Maple Elementary")
    ada = roster.person("ada.lovelace", schools=[school], grades="02")
    grace = roster.person("grace.hopper", schools=[school], given="Grace", family="Hopper")
    admin = roster.person("dee.admin", role=Role.district_admin, given="Dee", family="Admin")
    teacher = roster.person("tess.teacher", role=Role.teacher, schools=[school], given="Tess", family="T")
    saml = register_and_grant(db.session, "Reading Garden", school=school)
    release_fields(db.session, saml.slug, ["given_name", "grade", "school"])
    assert runner.invoke(args=["apps", "add-link", "Library", "https://library.example/"]).exit_code == 0
    assert runner.invoke(args=["apps", "grant", "Library", "--school", "sch-maple"]).exit_code == 0
    other = District(sourced_id="other-district", name="Other District")
    db.session.add(other)
    db.session.flush()
    stranger = roster.person("sam.stranger", schools=[], given="Sam", family="Stranger")
    stranger.district_id = other.id
    far_admin = roster.person("far.admin", role=Role.district_admin, given="Far", family="Admin")
    far_admin.district_id = other.id
    db.session.commit()
    browser = _client(app, "ada.lovelace")
    assert browser.get(f"/launch/{saml.slug}").status_code == 200
    assert browser.get(f"/launch/{saml.slug}").status_code == 200
    assert browser.get("/launch/library").status_code == 302
    return {"saml": saml, "ada": ada, "grace": grace, "admin": admin, "teacher": teacher,
            "stranger": stranger}


def test_only_district_admins_open_the_pages(app, shared):
    for username in ("ada.lovelace", "tess.teacher"):
        client = _client(app, username)
        assert "/admin/" not in client.get("/").get_data(as_text=True)
        for path in ("/admin/", f"/admin/apps/{shared['saml'].slug}", "/admin/people?username=ada.lovelace"):
            assert client.get(path).status_code == 403, (username, path)
    admin = _client(app, "dee.admin")
    assert 'href="/admin/"' in admin.get("/").get_data(as_text=True)


def test_the_apps_page_says_who_opens_each_app_and_what_it_receives(app, shared):
    admin = _client(app, "dee.admin")
    page = admin.get("/admin/")
    assert page.status_code == 200
    rows = {m.group(1): re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", m.group(2))))
            for m in re.finditer(r'<tr id="app-([a-z0-9-]+)">(.*?)</tr>', page.get_data(as_text=True), re.S)}
    reading = rows[shared["saml"].slug]
    assert "SAML 2.0" in reading and "school sch-maple (Maple Elementary)" in reading
    assert "subject, given_name, grade, school" in reading
    assert "2 launches, 1 person" in reading
    assert "nothing: a link" in rows["library"] and "1 launch, 1 person" in rows["library"]
    assert "first letter of the last name" in _text(page)  # the catalogue, in words


def test_an_apps_page_lists_its_releases(app, shared):
    admin = _client(app, "dee.admin")
    page = admin.get(f"/admin/apps/{shared['saml'].slug}")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    text = _text(page)
    assert "Each launch sends: subject, given_name, grade, school" in text
    assert text.count("Ada Lovelace SAML subject, given_name, grade, school") == 2
    assert "Grace" not in text
    assert admin.get("/admin/apps/no-such-app").status_code == 404
    assert admin.get("/admin/apps/" + "x" * 3000).status_code == 404


def test_what_was_shared_about_a_person(app, shared):
    admin = _client(app, "dee.admin")
    page = admin.get("/admin/people?username=Ada.Lovelace")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    text = _text(page)
    assert "What was shared about Ada Lovelace" in text
    assert "Reading Garden subject, given_name, grade, school 2" in text
    assert "Library nothing (a link) 1" in text
    assert text.count("SAML subject, given_name, grade, school") == 2 and "link nothing" in text
    assert "No app has received anything about Grace Hopper" in _text(admin.get("/admin/people?username=grace.hopper"))


@pytest.mark.parametrize("username", ["nobody.here", "sam.stranger", "ada.lovelace\x7f", "%", "' or 1=1 --",
                                      "x" * 5000, "ada.lovelace\u202e"])
def test_no_one_outside_the_district_is_found(app, shared, username):
    admin = _client(app, "dee.admin")
    page = admin.get("/admin/people", query_string={"username": username})
    assert page.status_code == 404
    assert "No one called" in _text(page) and "Traceback" not in _text(page)


def test_another_districts_admin_sees_none_of_these_releases(app, shared):
    far = _client(app, "far.admin")
    assert "1 person" not in _text(far.get("/admin/"))
    assert "Ada" not in _text(far.get(f"/admin/apps/{shared['saml'].slug}"))
    assert far.get("/admin/people?username=ada.lovelace").status_code == 404


def test_an_empty_lookup_asks_for_a_username(app, shared):
    admin = _client(app, "dee.admin")
    for query in ("", "?username=", "?username=%20%20"):
        page = admin.get("/admin/people" + query)
        assert page.status_code == 200 and "Type a username" in _text(page)


def _post(client, path, **data):
    """Post a form of the admin pages, as from a page open now: an app page's form carries what
    its page showed (when the poster may see that page)."""
    from tests.badges.conftest import csrf_from
    token = csrf_from(client, "/admin/")
    if "expect" not in data:
        shown = _carried(client, path)
        if shown is not None:
            data["expect"] = shown
    return client.post(path, data={"csrf_token": token, **data})


def _carried(client, action):
    """What the form posting to `action` on its app's page, as `client` sees that page now,
    carries of what the page showed (its `expect`); None for a form with none, or no such form."""
    page = re.match(r"/admin/apps/[^/]+", action)
    if page is None:
        return None
    form = re.search(rf'<form [^>]*action="{re.escape(action)}"[^>]*>(.*?)</form>',
                     client.get(page.group(0)).get_data(as_text=True), re.S)
    found = re.search(r'name="expect" value="([^"]*)"', form.group(1)) if form else None
    return html.unescape(found.group(1)) if found else None


def _shown(client, page):
    """What the app's page (as `client` sees it now) says the app receives, as its form sends it."""
    return _carried(client, f"{page}/release")


def _events(kind):
    from sqlalchemy import select

    from portal.db import db
    from portal.models import Event
    db.session.expire_all()
    return list(db.session.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


def _app_now(slug):
    from sqlalchemy import select

    from portal.db import db
    from portal.models import App
    db.session.expire_all()
    return db.session.scalar(select(App).where(App.slug == slug))


def test_an_admin_sets_the_fields_an_app_receives(app, shared):
    slug = shared["saml"].slug
    admin = _client(app, "dee.admin")
    answer = _post(admin, f"/admin/apps/{slug}/release", field=["family_name_initial", "given_name"])
    assert answer.status_code == 303 and answer.headers["Location"] == f"/admin/apps/{slug}"
    assert "Reading Garden now receives: subject, given_name, family_name_initial." in _text(admin.get(f"/admin/apps/{slug}"))
    assert _app_now(slug).released_fields == ["given_name", "family_name_initial"]
    [event] = _events("app_release_set")[-1:]
    assert event.actor_id == shared["admin"].id
    assert event.data == {"fields": ["subject", "given_name", "family_name_initial"]}
    # The next launch sends exactly those.
    from tests.sso.conftest import read_post_form
    page = _client(app, "ada.lovelace").get(f"/launch/{slug}")
    assert read_post_form(page.get_data(as_text=True)).fields["SAMLResponse"]
    assert _events("launch")[-1].data["fields"] == ["subject", "given_name", "family_name_initial"]

    # Nothing ticked: only the subject goes.
    _post(admin, f"/admin/apps/{slug}/release")
    assert _app_now(slug).released_fields == []


def test_a_fields_form_from_a_page_older_than_the_apps_fields_changes_nothing(app, shared, roster):
    # Found by review: the form sends the whole list, so a tab opened before another admin
    # stopped sending a field sent it again when one more box was ticked there, and the message
    # listed the whole set, the field just stopped among them.
    from portal.db import db
    roster.person("dan.admin", role=Role.district_admin, given="Dan", family="Admin")
    db.session.commit()
    slug, page = shared["saml"].slug, f"/admin/apps/{shared['saml'].slug}"
    dee, dan = _client(app, "dee.admin"), _client(app, "dan.admin")
    seen_by_dee = _shown(dee, page)                                    # Dee's tab, opened first
    assert seen_by_dee == "given_name,grade,school"
    assert _post(dan, f"{page}/release", field=["given_name"]).status_code == 303   # Dan stops two
    changes = len(_events("app_release_set"))
    answer = _post(dee, f"{page}/release", expect=seen_by_dee, field=["given_name", "grade", "school", "email"])
    assert answer.status_code == 303 and answer.headers["Location"] == page
    text = _text(dee.get(page))
    assert ("Someone changed the fields Reading Garden receives since you opened this page; nothing "
            "changed. Here is what it receives now: subject, given_name.") in text
    assert "Each launch sends: subject, given_name ." in text and "now receives" not in text
    assert _app_now(slug).released_fields == ["given_name"] and len(_events("app_release_set")) == changes
    # The page shown with that message is today's: its form sends what it shows now.
    assert _shown(dee, page) == "given_name"
    assert _post(dee, f"{page}/release", field=["given_name", "email"]).status_code == 303
    assert "Reading Garden now receives: subject, given_name, email." in _text(dee.get(page))
    assert _app_now(slug).released_fields == ["given_name", "email"]


@pytest.mark.parametrize("expect", [None, "", "given_name", "given_name,grade,school,email", "x" * 5000])
def test_a_fields_form_that_does_not_carry_what_the_page_showed_changes_nothing(app, shared, expect):
    # A form without it: from a page older than the check, as out of date as any.
    from tests.badges.conftest import csrf_from
    slug = shared["saml"].slug
    admin = _client(app, "dee.admin")
    data = {"csrf_token": csrf_from(admin, "/admin/"), "field": ["given_name"]}
    if expect is not None:
        data["expect"] = expect
    answer = admin.post(f"/admin/apps/{slug}/release", data=data)
    assert answer.status_code == 303
    text = _text(admin.get(f"/admin/apps/{slug}"))
    assert "since you opened this page; nothing changed" in text and "Traceback" not in text
    assert _app_now(slug).released_fields == ["given_name", "grade", "school"]


@pytest.mark.parametrize("fields", [["password_hash"], ["given_name", "<script>"], ["given_name\x7f"]])
def test_a_field_not_in_the_catalogue_changes_nothing(app, shared, fields):
    slug = shared["saml"].slug
    admin = _client(app, "dee.admin")
    answer = _post(admin, f"/admin/apps/{slug}/release", field=fields)
    assert answer.status_code == 303
    text = _text(admin.get(f"/admin/apps/{slug}"))
    assert "Unknown field" in text and "Traceback" not in text
    assert _app_now(slug).released_fields == ["given_name", "grade", "school"]


def test_an_admin_adds_and_removes_a_group(app, shared, roster):
    from portal.db import db
    slug = shared["saml"].slug
    roster.school("sch-oak", "Oak Elementary")
    db.session.commit()
    admin = _client(app, "dee.admin")
    answer = _post(admin, f"/admin/apps/{slug}/grants", school="sch-oak", grade="03", role="student")
    assert answer.status_code == 303
    assert ("Reading Garden is now granted to: school sch-oak (Oak Elementary), grade 03, role student."
            in _text(admin.get(f"/admin/apps/{slug}")))
    grants = {g.describe(): g.id for g in _app_now(slug).grants}
    assert set(grants) == {"school sch-maple (Maple Elementary)", "school sch-oak (Oak Elementary), grade 03, role student"}
    assert _events("app_granted")[-1].actor_id == shared["admin"].id

    maple = grants["school sch-maple (Maple Elementary)"]
    answer = _post(admin, f"/admin/apps/{slug}/grants/{maple}/remove")
    assert answer.status_code == 303
    assert "is no longer granted to: school sch-maple (Maple Elementary)." in _text(admin.get(f"/admin/apps/{slug}"))
    from sqlalchemy import select

    from portal.models import School
    maple_id = db.session.scalar(select(School.id).where(School.sourced_id == "sch-maple"))
    assert _events("app_ungranted")[-1].data == {"from": "school sch-maple (Maple Elementary)", "school_id": maple_id}
    # Ada (Maple) no longer has the tile, nor the launch.
    ada = _client(app, "ada.lovelace")
    assert "Reading Garden" not in ada.get("/").get_data(as_text=True)
    assert ada.get(f"/launch/{slug}").status_code in (403, 404)
    # Removing it again (a stale page) says so and changes nothing.
    _post(admin, f"/admin/apps/{slug}/grants/{maple}/remove")
    assert "That grant is no longer there; nothing changed." in _text(admin.get(f"/admin/apps/{slug}"))


def test_each_groups_remove_button_names_its_group_for_a_screen_reader(app, shared):
    from tests.accessible import accessible_name, page_of, visible_text
    slug = shared["saml"].slug
    admin = _client(app, "dee.admin")
    assert _post(admin, f"/admin/apps/{slug}/grants", grade="03", role="teacher").status_code == 303
    page = page_of(admin.get(f"/admin/apps/{slug}"))
    grants = _app_now(slug).grants
    assert len(grants) == 2
    for grant in grants:
        remove = page.get_element_by_id(f"grant-{grant.id}").find(".//button")
        assert accessible_name(remove, page) == f"Remove: {grant.describe()}"
        assert visible_text(remove) == "Remove"


@pytest.mark.parametrize("data, says", [
    ({}, "Choose who gets the app"),
    ({"school": "no-such-school"}, "There is no school with id 'no-such-school'"),
    ({"section": "no-such-class"}, "There is no section with id 'no-such-class'"),
    ({"grade": "fifth"}, "The grade must be one the roster uses (KG, 01 ... 13, PK, ...), not 'fifth'."),
    ({"role": "janitor"}, "The role must be student, teacher, school admin or district admin, not 'janitor'."),
    ({"school": "sch-maple"}, "already granted to exactly that group"),
    ({"district": "no", "school": "", "grade": " "}, "Choose who gets the app"),
])
def test_a_bad_group_says_why_and_changes_nothing(app, shared, data, says):
    slug = shared["saml"].slug
    admin = _client(app, "dee.admin")
    before = [g.describe() for g in _app_now(slug).grants]
    assert _post(admin, f"/admin/apps/{slug}/grants", **data).status_code == 303
    text = _text(admin.get(f"/admin/apps/{slug}"))
    assert says in text and "Traceback" not in text
    assert [g.describe() for g in _app_now(slug).grants] == before


@pytest.mark.parametrize("data", [{"grade": "0"}, {"grade": "Kindergarten"}, {"role": "admin"},
                                  {"role": "school_admin\u200b"}])
def test_the_grant_forms_refusals_name_the_page_not_the_command_line(app, shared, runner, data):
    # Found by review: a hand-made request (the page offers lists) was answered "--grade must be
    # a OneRoster grade ..." and "Role must be one of student, teacher, school_admin, ...": a
    # command-line flag and the codes behind the page's names.
    from tests.admin.helpers import refused
    slug = shared["saml"].slug
    admin = _client(app, "dee.admin")
    assert _post(admin, f"/admin/apps/{slug}/grants", **data).status_code == 303
    message = re.search(r'class="problem"[^>]*><p>(.*?)</p>', admin.get(f"/admin/apps/{slug}").get_data(as_text=True),
                        re.S)
    assert message, data
    said = html.unescape(message.group(1))
    assert "--" not in said and "school_admin," not in said and "district_admin" not in said
    assert said.startswith(("The grade must be one the roster uses", "The role must be student, teacher"))
    # The command line keeps its own words: they name its flags and the values it takes.
    flag, value = next(iter(data.items()))
    line = refused(runner, "apps", "grant", "Library", f"--{flag}", value)
    assert line.startswith(("Error: --grade must be a OneRoster grade",
                            "Error: role must be one of student, teacher, school_admin, district_admin"))


def test_a_remove_button_from_an_older_page_removes_no_other_group(app, shared, roster):
    # Found in review: on SQLite a removed grant's id goes to the next grant made, so a Remove
    # button shown before another admin removed that group and granted another removed the new one.
    from portal.db import db
    roster.person("dan.admin", role=Role.district_admin, given="Dan", family="Admin")
    db.session.commit()
    slug, page = shared["saml"].slug, f"/admin/apps/{shared['saml'].slug}"
    dee, dan = _client(app, "dee.admin"), _client(app, "dan.admin")
    assert _post(dee, f"{page}/grants", role="teacher").status_code == 303
    [teachers] = [g.id for g in _app_now(slug).grants if g.role is Role.teacher]
    button = f"{page}/grants/{teachers}/remove"
    seen_by_dee = _carried(dee, button)                              # Dee's tab, opened now
    assert seen_by_dee
    assert _post(dan, button).status_code == 303                      # Dan removes the teachers
    assert _post(dan, f"{page}/grants", district="yes").status_code == 303   # and grants everyone
    changes = len(_events("app_ungranted"))
    answer = _post(dee, button, expect=seen_by_dee)                   # Dee presses Remove there
    assert answer.status_code == 303 and answer.headers["Location"] == page
    # On SQLite the id is another group's now ("Someone changed ...: that grant ..."); on
    # PostgreSQL, which never reuses an id, there is none ("That grant ...").
    text = _text(dee.get(page)).lower()
    assert "that grant is no longer there; nothing changed" in text and "no longer granted to" not in text
    assert sorted(g.describe() for g in _app_now(slug).grants) == [
        "school sch-maple (Maple Elementary)", "whole district"]
    assert len(_events("app_ungranted")) == changes
    # A button shown now removes its own group.
    [everyone] = [g.id for g in _app_now(slug).grants if g.school_id is None]
    assert _post(dee, f"{page}/grants/{everyone}/remove").status_code == 303
    assert "Reading Garden is no longer granted to: whole district." in _text(dee.get(page))
    # A Remove form without what its page showed (from before this check) removes nothing.
    [maple] = [g.id for g in _app_now(slug).grants]
    from tests.badges.conftest import csrf_from
    assert dee.post(f"{page}/grants/{maple}/remove",
                    data={"csrf_token": csrf_from(dee, "/admin/")}).status_code == 303
    assert "that grant is no longer there; nothing changed" in _text(dee.get(page)).lower()
    assert [g.id for g in _app_now(slug).grants] == [maple]


def test_only_a_district_admin_with_a_form_token_changes_an_app(app, shared):
    slug = shared["saml"].slug
    grant_id = _app_now(slug).grants[0].id
    paths = [f"/admin/apps/{slug}/release", f"/admin/apps/{slug}/grants",
             f"/admin/apps/{slug}/grants/{grant_id}/remove"]
    for username in ("ada.lovelace", "tess.teacher"):
        client = _client(app, username)
        for path in paths:
            assert _post(client, path, field="email", school="sch-maple").status_code == 403
    admin = _client(app, "dee.admin")
    for path in paths:
        assert admin.post(path, data={"field": "email", "district": "yes"}).status_code == 400  # no CSRF token
    assert _post(admin, "/admin/apps/no-such-app/release", field="email").status_code == 404
    assert _post(admin, f"/admin/apps/{slug}/grants/999999/remove").status_code == 303
    current = _app_now(slug)
    assert current.released_fields == ["given_name", "grade", "school"]
    assert [g.describe() for g in current.grants] == ["school sch-maple (Maple Elementary)"]


def test_ungrant_on_the_command_line(app, shared, runner):
    from tests.admin.helpers import cli, refused
    assert "Library is no longer granted to: school sch-maple (Maple Elementary)" in cli(
        runner, "apps", "ungrant", "Library", "--school", "sch-maple")
    assert "has no grant to exactly that group" in refused(runner, "apps", "ungrant", "Library", "--school", "sch-maple")
    assert "say who gets the app" in refused(runner, "apps", "ungrant", "Library")
    assert "no app" in refused(runner, "apps", "ungrant", "Nope", "--district").lower()
    assert _events("app_ungranted")[-1].actor_id is None


def signed_in_page(browser, live_server, username):
    """A new Chromium context and page, signed in as `username` by the form (the caller closes it)."""
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(live_server + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(live_server + "/")
    return context, page


@pytest.mark.browser
def test_an_admin_in_a_real_browser_reads_what_was_shared_and_changes_an_app(app, shared, browser, live_server):
    slug = shared["saml"].slug
    context, page = signed_in_page(browser, live_server, "dee.admin")
    try:
        page.click("header >> text=Apps and data")
        page.fill("#username", "ada.lovelace")
        page.click("form.find-person button")
        assert "What was shared about Ada Lovelace" in page.inner_text("h1")
        page.click("table >> text=Reading Garden")
        page.wait_for_url(live_server + f"/admin/apps/{slug}")

        page.uncheck("#field-grade")
        page.uncheck("#field-school")
        page.click("text=Send these fields")
        assert page.inner_text(".done") == "Reading Garden now receives: subject, given_name."

        page.select_option("#grant-grade", "02")
        page.select_option("#grant-role", "student")
        page.click("text=Add this group")
        # Within the admin's district: a grade alone would reach every district of the portal.
        assert page.inner_text(".done") == "Reading Garden is now granted to: whole district, grade 02, role student."
        page.click("#grant-" + str(_app_now(slug).grants[0].id) + " >> text=Remove")
        assert "is no longer granted to: school sch-maple (Maple Elementary)." in page.inner_text(".done")
    finally:
        context.close()
    current = _app_now(slug)
    assert current.released_fields == ["given_name"]
    assert [g.describe() for g in current.grants] == ["whole district, grade 02, role student"]


def test_the_audit_log_shows_who_did_what_in_the_district(app, shared):
    admin = _client(app, "dee.admin")
    _post(admin, f"/admin/apps/{shared['saml'].slug}/release", field=["given_name"])
    page = admin.get("/admin/log")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    text = _text(page)
    assert "fields an app receives changed: Reading Garden Dee Admin fields: subject, given_name" in text
    assert "opened an app: Reading Garden Ada Lovelace ada.lovelace themselves protocol: saml" in text
    assert "signed in Ada Lovelace ada.lovelace themselves method: password" in text
    assert "Sam" not in text  # another district's person
    only = _text(admin.get("/admin/log?kind=launch&username=ada.lovelace"))
    assert only.count("opened an app:") == 3  # two SAML launches and a link, and nothing else
    assert "signed in Ada" not in only and "fields an app receives changed:" not in only
    far = _text(_client(app, "far.admin").get("/admin/log"))
    # Nothing about or by the other district's people; app changes made from the command line
    # are about no one, and the apps are the deployment's, so every admin sees those.
    assert "Ada Lovelace" not in far and "Dee Admin" not in far and "opened an app:" not in far


def test_the_audit_log_credits_an_apps_userinfo_read_to_the_app(app, shared):
    # As portal.sso.oidc.server records it: about the student, by no person, naming the app.
    from portal import audit
    from portal.db import db
    audit.record("userinfo", person=db.session.merge(shared["ada"]), app=db.session.merge(shared["saml"]),
                 data={"protocol": "oidc", "fields": ["given_name"]})
    text = _text(_client(app, "dee.admin").get("/admin/log?kind=userinfo"))
    assert ("an app read their data again (OpenID userinfo): Reading Garden Ada Lovelace ada.lovelace "
            "Reading Garden (the app) protocol: oidc; fields: given_name") in text
    assert "the command line or the roster" not in text


@pytest.mark.parametrize("query", ["?kind=drop table", "?kind=" + "x" * 5000, "?username=nobody.here",
                                   "?username=sam.stranger", "?kind=launch&username=%00", "?username=" + "y" * 5000])
def test_the_audit_log_takes_hostile_filters_calmly(app, shared, query):
    admin = _client(app, "dee.admin")
    page = admin.get("/admin/log" + query)
    assert page.status_code in (200, 400, 404)
    assert "Traceback" not in _text(page)
    for username in ("ada.lovelace", "tess.teacher"):
        assert _client(app, username).get("/admin/log" + query).status_code in (400, 403)


def test_an_admin_cannot_grant_an_app_to_another_districts_school_or_class(app, shared, roster):
    from sqlalchemy import select

    from portal.db import db
    from portal.models import District
    other = db.session.scalar(select(District).where(District.sourced_id == "other-district"))
    far_school = roster.school("sch-far", "Far Elementary")
    far_school.district_id = other.id
    roster.section(far_school, "sec-far", "Far Room")
    db.session.commit()
    slug = shared["saml"].slug
    admin = _client(app, "dee.admin")
    before = [g.describe() for g in _app_now(slug).grants]
    for data, says in (({"school": "sch-far"}, "There is no school with id 'sch-far'."),
                       ({"section": "sec-far"}, "There is no section with id 'sec-far'.")):
        assert _post(admin, f"/admin/apps/{slug}/grants", **data).status_code == 303
        assert says in _text(admin.get(f"/admin/apps/{slug}"))
    assert [g.describe() for g in _app_now(slug).grants] == before
    assert "Far Elementary" not in admin.get(f"/admin/apps/{slug}").get_data(as_text=True)  # not offered


def _far_school(roster):
    from sqlalchemy import select

    from portal.db import db
    from portal.models import District
    other = db.session.scalar(select(District).where(District.sourced_id == "other-district"))
    far_school = roster.school("sch-far", "Far Elementary")
    far_school.district_id = other.id
    db.session.commit()
    return far_school


def test_one_districts_admin_reaches_no_other_districts_people_through_shared_apps(app, shared, roster):
    # Found by review: apps are shared by the districts of a portal, and a grant to a grade alone
    # reached every district; another district's grants could be seen and removed by id; and
    # the fields an app receives could be changed for all of them.
    from portal.db import db
    far_school = _far_school(roster)
    far_kid = roster.person("far.kid", schools=[far_school], grades="02", given="Far", family="Kid")
    far_kid.district_id = far_school.district_id
    db.session.commit()
    slug = shared["saml"].slug
    kid = _client(app, "far.kid")
    assert kid.get(f"/launch/{slug}").status_code == 404
    admin = _client(app, "dee.admin")
    assert _post(admin, f"/admin/apps/{slug}/grants", grade="02").status_code == 303
    assert kid.get(f"/launch/{slug}").status_code == 404          # Dee's grade 02, not Far's
    assert _client(app, "ada.lovelace").get(f"/launch/{slug}").status_code == 200

    far = _client(app, "far.admin")
    assert _post(far, f"/admin/apps/{slug}/grants", school="sch-far").status_code == 303
    assert kid.get(f"/launch/{slug}").status_code == 200          # Far's own school: fine
    page = far.get(f"/admin/apps/{slug}").get_data(as_text=True)
    assert "Maple Elementary" not in page and "grade 02" not in page   # Dee's grants are not Far's
    dees = [g for g in _app_now(slug).grants if g.school_id != far_school.id]
    for grant in dees:
        assert _post(far, f"/admin/apps/{slug}/grants/{grant.id}/remove").status_code == 303
        assert "that grant is no longer there" in _text(far.get(f"/admin/apps/{slug}")).lower()
    assert {g.id for g in _app_now(slug).grants} >= {g.id for g in dees}

    # Two districts use the app now: what it receives is the operator's to set, not one admin's.
    before = list(_app_now(slug).released_fields)
    for who in (far, admin):
        assert _post(who, f"/admin/apps/{slug}/release", field=["email", "student_number"]).status_code == 303
        assert "is open to another district of this portal too" in _text(who.get(f"/admin/apps/{slug}"))
    assert list(_app_now(slug).released_fields) == before


def test_the_whole_district_from_the_web_is_the_admins_own_with_two_districts(app, shared, roster):
    far_school = _far_school(roster)
    from portal.db import db
    far_kid = roster.person("far.kid", schools=[far_school], grades="02")
    far_kid.district_id = far_school.district_id
    db.session.commit()
    admin = _client(app, "dee.admin")
    assert _post(admin, "/admin/apps/library/grants", district="yes").status_code == 303
    assert "Library is now granted to: whole district." in _text(admin.get("/admin/apps/library"))
    assert _client(app, "grace.hopper").get("/launch/library").status_code == 302
    assert _client(app, "far.kid").get("/launch/library").status_code == 404


def test_command_line_changes_to_a_school_show_in_its_own_districts_log_only(app, shared, roster, runner,
                                                                             redis_client):
    # Found by review: events about no person and by no one (the command line) showed in every
    # district's log, naming another district's devices and policies.
    from portal.badges.kiosks import create_pairing_code, enroll_device
    from portal.db import db
    far_school = _far_school(roster)
    code = create_pairing_code(db.session, redis_client, far_school).code
    enroll_device(db.session, redis_client, code, name="Far Library Cart 3")
    assert runner.invoke(args=["badges", "policy", "sch-far", "--grades", "KG"]).exit_code == 0
    assert runner.invoke(args=["badges", "policy", "sch-maple", "--grades", "01"]).exit_code == 0
    mine = _text(_client(app, "dee.admin").get("/admin/log"))
    theirs = _text(_client(app, "far.admin").get("/admin/log"))
    assert "Far Library Cart 3" not in mine and "badges for KG" not in mine and "badges for 01" in mine
    assert "Far Library Cart 3" in theirs and "badges for KG" in theirs and "badges for 01" not in theirs


def test_a_district_admin_whose_district_is_gone_has_authority_nowhere(app, shared):
    # Found by review: the roster removing a district leaves its admin with no district, and
    # every "the admin's district" comparison then matched everyone with none (and more).
    from portal.db import db
    admin = _client(app, "dee.admin")
    shared["admin"].district_id = None
    db.session.commit()
    slug = shared["saml"].slug
    before = list(_app_now(slug).released_fields)
    for path in ("/admin/", f"/admin/apps/{slug}", "/admin/log", "/admin/people?username=ada.lovelace",
                 "/teacher/"):
        assert admin.get(path).status_code == 403, path
    from tests.badges.conftest import csrf_from
    token = csrf_from(admin, "/")          # their tiles page still has a form (sign out)
    assert admin.post(f"/admin/apps/{slug}/release", data={"field": "email", "csrf_token": token}).status_code == 403
    assert admin.post(f"/admin/apps/{slug}/grants", data={"role": "student", "csrf_token": token}).status_code == 403
    assert list(_app_now(slug).released_fields) == before


def test_a_school_grant_is_one_group_whether_or_not_the_district_was_named(app, shared, runner):
    # Found by review: --district with --school (or the web form's "whole district" ticked with
    # a school) stored both; `apps list` showed the school alone, and ungranting the school as
    # listed was refused, while granting it again made a second copy.
    from sqlalchemy import select

    from portal.db import db
    from portal.models import Grant, School
    from tests.admin.helpers import cli, refused
    admin = _client(app, "dee.admin")
    slug = shared["saml"].slug
    oak = School(sourced_id="sch-oak", name="Oak Elementary", district_id=shared["admin"].district_id,
                 identifier="")
    db.session.add(oak)
    db.session.commit()
    assert _post(admin, f"/admin/apps/{slug}/grants", district="yes", school="sch-oak").status_code == 303
    stored = db.session.scalars(select(Grant).where(Grant.school_id == oak.id)).one()
    assert stored.district_id is None and stored.describe() == "school sch-oak (Oak Elementary)"
    # One stored both ways by an earlier version: the same group as the school alone.
    db.session.add(Grant(app_id=stored.app_id, school_id=oak.id, district_id=oak.district_id, grade="05"))
    db.session.commit()
    assert "already granted to exactly that group" in refused(
        runner, "apps", "grant", "Reading Garden", "--school", "sch-oak", "--grade", "05")
    assert "no longer granted to: school sch-oak (Oak Elementary), grade 05" in cli(
        runner, "apps", "ungrant", "Reading Garden", "--school", "sch-oak", "--grade", "05")


def test_the_audit_log_names_schools_classes_and_devices_not_their_numbers(app, shared, roster):
    # A sheet printed for a class, a device enrolled in a school: as the log reads them back.
    from datetime import datetime, timezone

    from sqlalchemy import select

    from portal import audit
    from portal.db import db
    from portal.models import KioskDevice, School
    school = db.session.scalar(select(School).where(School.sourced_id == "sch-maple"))
    room = roster.section(school, "sec-room-4", "Room 4")
    device = KioskDevice(school_id=school.id, name="Reading corner Chromebook", secret_hash="x" * 64,
                         created_at=datetime.now(timezone.utc))
    db.session.add(device)
    db.session.flush()
    teacher = db.session.merge(shared["teacher"])
    audit.record("badge_sheet_printed", actor=teacher, commit=False,
                 data={"section_id": room.id, "students": 24, "paper": "letter"})
    audit.record("kiosk_enrolled", actor=teacher, commit=False,
                 data={"device_id": device.id, "school_id": school.id})
    audit.record("badge_sheet_printed", actor=teacher, data={"section_id": 987654, "students": 3, "paper": "a4"})
    text = _text(_client(app, "dee.admin").get("/admin/log"))
    assert ("badge sheet printed Tess T class: Room 4 (Maple Elementary); students: 24; paper: letter"
            in text)
    assert ("classroom device enrolled Tess T classroom device: Reading corner Chromebook (Maple Elementary); "
            "school: Maple Elementary") in text
    assert "class: no. 987654 (since removed); students: 3" in text
    assert "section_id" not in text and "device_id" not in text


def test_the_audit_log_shows_when_a_badge_expires_on_the_districts_clocks(app, settings, shared):
    # The When column was Chicago's, a badge's "expires" detail UTC's ISO string.
    from dataclasses import replace

    from portal import audit
    from portal.db import db
    app.config["SETTINGS"] = replace(settings, timezone="America/Chicago")
    ada, teacher = db.session.merge(shared["ada"]), db.session.merge(shared["teacher"])
    for expires in ("2026-03-11T01:00:00+00:00", "2026-08-01T05:00:00+00:00", "2026-03-11T01:00:00",
                    "soon", 17):
        audit.record("badge_issued", person=ada, actor=teacher, data={"badge_id": 5, "expires_at": expires})
    text = _text(_client(app, "dee.admin").get("/admin/log"))
    assert "badge number: 5; expires: Mar 10, 2026 20:00 CDT" in text
    assert "expires: Aug 1, 2026 00:00 CDT" in text
    # A value that is not a moment with its zone is shown as it was recorded.
    assert "expires: 2026-03-11T01:00:00 " in text and "expires: soon" in text and "expires: 17" in text
