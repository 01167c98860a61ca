"""Every error a person meets is a short page in plain words, never a traceback; without Redis,
pages say "Sign-in is unavailable" and the portal comes back by itself."""
import html
import time
from dataclasses import replace

import pytest
from flask import Blueprint, abort, session
from flask_login import current_user

from portal import create_app
from portal.auth.roles import role_required
from portal.devserver import RedisProcess, free_port
from portal.models import Role
from tests.auth.helpers import isolated_client
from tests.conftest import AuthActions, csrf_token


@pytest.fixture
def client(app):
    return isolated_client(app)


def assert_plain_page(response, status, words):
    html = response.get_data(as_text=True)
    assert response.status_code == status
    assert response.content_type.startswith("text/html")
    assert words in html
    for leak in ("Traceback", "File \"", "Error:", "Exception", "werkzeug", "sqlalchemy", "redis."):
        assert leak not in html


def test_unknown_page_is_a_plain_404(client):
    assert_plain_page(client.get("/no/such/page"), 404, "We can&#39;t find that page")


def test_wrong_method_is_a_plain_405_that_names_the_right_one(client):
    response = client.get("/logout")
    assert_plain_page(response, 405, "That doesn&#39;t work here")
    assert "POST" in response.headers["Allow"]


def test_errors_answer_json_to_json_clients(client):
    response = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.json["error"] == "We can't find that page"


@pytest.fixture
def staff_app(app):
    # A test-only blueprint guarded by the one role decorator; the app itself stays as it is.
    bp = Blueprint("staff_only", __name__)

    @bp.route("/staff-only")
    @role_required(Role.teacher, Role.school_admin)
    def staff_only():
        return "staff room"

    app.register_blueprint(bp)
    return app


@pytest.mark.parametrize("method, path, data", [
    ("GET", "/oidc/authorize?client_id=app%00x&response_type=code", None),
    ("GET", "/login?next=/%00", None),
    ("POST", "/login", {"username": "ada\x00lovelace", "password": "correct horse battery"}),
    ("GET", "/launch/app%00x", None),
])
def test_a_nul_character_is_refused_in_plain_words(client, roster, method, path, data):
    """PostgreSQL cannot compare a NUL: a query with one was a 500 there."""
    roster.person("ada.lovelace")
    if data is not None:
        data["csrf_token"] = csrf_token(client)
    response = client.open(path, method=method, data=data)
    assert response.status_code == 400
    assert "characters we can" in response.get_data(as_text=True)


def test_wrong_role_is_a_plain_403(staff_app, client, auth, roster):
    roster.person("ada.lovelace", role=Role.student)
    auth.login()
    assert_plain_page(client.get("/staff-only"), 403, "You can&#39;t open this page")


def test_right_role_passes_and_signed_out_goes_to_sign_in(staff_app, client, auth, roster):
    assert client.get("/staff-only").headers["Location"].startswith("/login?next=")
    roster.person("mr.rogers", role=Role.teacher)
    auth.login(username="mr.rogers")
    response = client.get("/staff-only")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "staff room"


def test_unexpected_failure_is_a_plain_500(app, client):
    bp = Blueprint("broken", __name__)

    @bp.route("/broken")
    def broken():
        raise RuntimeError("secret internals: db password hunter2")

    app.register_blueprint(bp)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/broken")
    assert_plain_page(response, 500, "Something went wrong on our side")
    assert "hunter2" not in response.get_data(as_text=True)


def test_a_database_that_cannot_be_reached_reads_plainly(settings, app, tmp_path, caplog):
    """A SQLite file whose folder went away (for PostgreSQL: a server that is down): the sign-in
    post meets the database and answers 503 in words; the log says why, for the operator."""
    folder = tmp_path / "gone"
    folder.mkdir()
    lost = create_app({"SETTINGS": replace(settings, database_url=f"sqlite:///{folder / 'portal.sqlite3'}")})
    lost.config["PROPAGATE_EXCEPTIONS"] = False
    folder.rmdir()
    client = isolated_client(lost)
    with caplog.at_level("WARNING"):
        response = client.post("/login", data={"username": "ada.lovelace", "password": "a long password",
                                               "csrf_token": csrf_token(client)})
    assert_unavailable(response)
    assert "database unavailable: unable to open database file" in caplog.text
    assert "a long password" not in caplog.text


# --- advice in words for who reads it ----------------------------------------------------------

# How each reader's advice ends: a child (signed in or not) asks their teacher; a teacher or an
# administrator has no teacher to ask; whoever it is, when that cannot be told, the school office.
STUDENT_ADVICE = {403: "or ask your teacher.", 429: "or ask your teacher for help.",
                  500: "If it keeps happening, tell your teacher."}
STAFF_ADVICE = {403: "or ask a district administrator.",
                429: "If it keeps happening, tell your district's IT team.",
                500: "If it keeps happening, tell your district's IT team."}
ANYONE_ADVICE = {403: "or ask the school office.", 429: "or ask the school office for help.",
                 500: "If it keeps happening, tell the school office."}


def add_failing_pages(app):
    """Test-only pages that answer `status`: after loading the signed-in person, as every page
    for signed-in people does first (role_required), or at once, before anyone was loaded."""
    bp = Blueprint("failing", __name__)

    def fail(status: int):
        if status == 500:
            raise RuntimeError("a bug")
        abort(status)

    @bp.route("/fails/<int:status>")
    def after_loading(status: int):
        current_user._get_current_object()  # loads the person (or no one)
        fail(status)

    @bp.route("/fails-at-once/<int:status>")
    def at_once(status: int):
        fail(status)

    app.register_blueprint(bp)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


def advice_of(response) -> str:
    """The advice of an error page: its one paragraph in the message."""
    import re
    page = html.unescape(response.get_data(as_text=True))
    return re.search(r'<section class="card message" role="alert">.*?<p>(.*?)</p>', page, re.S).group(1)


@pytest.mark.parametrize("status", [403, 429, 500])
@pytest.mark.parametrize("role", [None, Role.student, Role.teacher, Role.school_admin, Role.district_admin])
def test_an_error_pages_advice_speaks_to_who_reads_it_and_json_says_the_same(app, client, auth, roster,
                                                                              role, status):
    # A teacher or a district admin who met a 403, 429 or 500 was told to ask their teacher.
    add_failing_pages(app)
    if role is not None:
        roster.person("ada.lovelace", role=role, schools=[roster.school()])
        auth.login()
    ending = (STUDENT_ADVICE if role in (None, Role.student) else STAFF_ADVICE)[status]
    page = client.get(f"/fails/{status}")
    assert page.status_code == status and advice_of(page).endswith(ending), advice_of(page)
    assert ("teacher" in advice_of(page)) is (role in (None, Role.student))
    answer = client.get(f"/fails/{status}", headers={"Accept": "application/json"})
    assert answer.status_code == status and answer.json["advice"] == advice_of(page)


def test_a_teacher_refused_a_page_of_the_district_admins_is_told_whom_to_ask(app, client, auth, roster):
    roster.person("mr.rogers", role=Role.teacher, schools=[roster.school()])
    auth.login(username="mr.rogers")
    refused = client.get("/admin/")
    assert refused.status_code == 403
    assert advice_of(refused) == "Sign in with an account that may see it, or ask a district administrator."


def test_a_failure_before_anyone_was_loaded_speaks_to_anyone_and_to_a_child_signed_out(app, client, auth,
                                                                                      roster):
    """A 500 page does not load the person (that may be what failed): a child who is not signed in
    (the session names no one) still reads a child's words; a signed-in person, words for anyone."""
    add_failing_pages(app)
    assert advice_of(client.get("/fails-at-once/500")).endswith(STUDENT_ADVICE[500])
    roster.person("mr.rogers", role=Role.teacher, schools=[roster.school()])
    auth.login(username="mr.rogers")
    failed = client.get("/fails-at-once/500")
    assert failed.status_code == 500 and advice_of(failed).endswith(ANYONE_ADVICE[500])
    assert "Sign out" not in failed.get_data(as_text=True)


@pytest.mark.parametrize("path, status, words", [
    ("/no/such/page", 404, "Check the address, or go back to your apps."),
    ("/fails-at-once/403", 403, "Sign in with an account that may see it, " + ANYONE_ADVICE[403]),
    ("/fails-at-once/429", 429, "Wait a few minutes and try again, " + ANYONE_ADVICE[429]),
])
def test_an_error_page_whose_reader_cannot_be_loaded_still_shows_in_words_for_anyone(
        settings, app, client, auth, roster, tmp_path, caplog, path, status, words):
    """A signed-in teacher's session, and a database gone away (a SQLite file whose folder went):
    loading her fails. The page it was (not a 500 failing inside the error page) says so in words
    for anyone, as HTML and as JSON."""
    roster.person("mr.rogers", role=Role.teacher, schools=[roster.school()])
    auth.login(username="mr.rogers")
    folder = tmp_path / "gone"
    folder.mkdir()
    lost = add_failing_pages(create_app({"SETTINGS": replace(
        settings, database_url=f"sqlite:///{folder / 'portal.sqlite3'}")}))
    folder.rmdir()
    cookie = lost.config["SESSION_COOKIE_NAME"]
    away = isolated_client(lost)
    away.set_cookie(cookie, client.get_cookie(cookie).value)
    with caplog.at_level("WARNING"):
        page = away.get(path)
        answer = away.get(path, headers={"Accept": "application/json"})
    assert_plain_page(page, status, "")
    assert advice_of(page) == words and answer.status_code == status and answer.json["advice"] == words
    assert "Sign out" not in page.get_data(as_text=True)
    assert f"the person reading a {status} page could not be told: OperationalError" in caplog.text


# --- Redis outage ---------------------------------------------------------------------------

@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own, on a fixed port, that the test may stop and start."""
    proc = RedisProcess(tmp_path / "redis", port=free_port()).start()
    yield proc
    proc.stop()


@pytest.fixture
def outage_app(settings, own_redis, app):
    # `app` is requested for its clean-up of the database; this app talks to `own_redis`.
    outage = create_app({"SETTINGS": replace(settings, redis_url=own_redis.url)})
    bp = Blueprint("outage", __name__)

    @bp.route("/redis-stops-now")
    def redis_stops_now():
        own_redis.stop()
        session["seen"] = True  # a change that can no longer be stored
        return "stored?"

    outage.register_blueprint(bp)
    outage.config["PROPAGATE_EXCEPTIONS"] = False
    return outage


def assert_unavailable(response):
    assert_plain_page(response, 503, "Sign-in is unavailable")
    assert "Try again in a minute" in response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "60"


def test_redis_outage_reads_plainly_and_the_portal_recovers(outage_app, own_redis, roster):
    roster.person("ada.lovelace")
    student, newcomer = isolated_client(outage_app), isolated_client(outage_app)
    AuthActions(student).login()
    token = csrf_token(newcomer)
    assert student.get("/").status_code == 200

    own_redis.stop()
    started = time.monotonic()
    assert_unavailable(student.get("/"))                     # a signed-in page
    assert_unavailable(newcomer.get("/login"))               # the sign-in page
    assert_unavailable(newcomer.post("/login", data={        # a sign-in (not a CSRF complaint)
        "username": "ada.lovelace", "password": "correct horse battery", "csrf_token": token}))
    assert_unavailable(isolated_client(outage_app).get("/login"))  # a first visit, no cookie
    assert_unavailable(student.post("/logout", data={"csrf_token": "x"}))
    assert time.monotonic() - started < 5  # answers at once, no hanging on retries
    css = student.get("/static/css/portal.css")
    assert css.status_code == 200 and b".tiles" in css.data

    # Redis comes back on the same port (empty: the sessions are gone). No restart of the app.
    own_redis.start()
    assert student.get("/").status_code == 302
    assert AuthActions(student).login().status_code == 302
    assert student.get("/").status_code == 200
    assert csrf_token(newcomer)


def test_redis_lost_during_a_request_does_not_pretend_to_succeed(outage_app, own_redis, roster):
    roster.person("ada.lovelace")
    student = isolated_client(outage_app)
    AuthActions(student).login()
    assert_unavailable(student.get("/redis-stops-now"))
    own_redis.start()
    assert student.get("/login").status_code == 200


def test_a_development_servers_request_lines_carry_no_query_and_no_one_time_code(app, live_server,
                                                                                 caplog):
    # Found by review: `flask --app portal run` logged every request line, and with them the ID
    # token (student data) in a logout address and the code of a kiosk's hand-off link.
    import logging

    import requests
    caplog.set_level(logging.INFO, logger="werkzeug")
    requests.get(f"{live_server}/oidc/logout", params={"id_token_hint": "eyJsecret.part.sig"}, timeout=10)
    requests.get(f"{live_server}/kiosk/handoff/Hand0ffC0de", timeout=10, allow_redirects=False)
    requests.get(f"{live_server}/kiosk/bind/B1ndC0de", timeout=10, allow_redirects=False)
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("/oidc/logout?..." in line for line in lines), lines
    assert any("/kiosk/handoff/..." in line for line in lines), lines
    assert not any(secret in caplog.text for secret in ("eyJsecret", "Hand0ffC0de", "B1ndC0de"))


def test_every_answer_carries_the_security_headers_and_production_asks_for_https(settings, redis_server):
    from dataclasses import replace

    from portal import create_app
    development = create_app({"SETTINGS": settings}).test_client().get("/login")
    assert development.headers["X-Frame-Options"] == "DENY"
    assert development.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in development.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in development.headers   # plain http on 127.0.0.1
    production = create_app({"SETTINGS": replace(settings, env="production")})
    answer = production.test_client().get("/login", base_url="https://portal.example")
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000"


# --- a database schema older or newer than the code ---------------------------------------------

@pytest.fixture
def own_database(tmp_path):
    """A database of this test's own, on the suite's kind (a SQLite file, or a PostgreSQL schema of
    its own when PORTAL_TEST_DATABASE_URL is set): yields its URL, dropped afterwards."""
    import os
    import uuid

    from sqlalchemy import create_engine, text

    from tests.conftest import _postgres_schema_url
    base = os.environ.get("PORTAL_TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp_path / 'own.sqlite3'}"
        return
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield _postgres_schema_url(base, schema)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _older(engine):
    from portal.migrate import upgrade
    upgrade(engine, "0010_app_opt_outs")     # before security holds: no person.held_at


def _newer(engine):
    # A newer portal that dropped a column this code reads, stamped with a revision it does not know.
    from sqlalchemy import text

    from portal.migrate import upgrade
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE person DROP COLUMN hold_reason"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_future_change'"))


@pytest.mark.parametrize("made, logged", [
    (_older, "the database schema is older than this code (the database is at 0010_app_opt_outs): "
             "run `portal db upgrade`"),
    (_newer, "the database schema is newer than this code (revision 0099_future_change, which it does "
             "not know): a newer version of the portal migrated it; run that version"),
])
def test_a_database_schema_out_of_step_with_the_code_is_said_plainly_and_logged_once(
        settings, app, own_database, caplog, made, logged):
    # Before, SQLite's "no such column" read as an outage ("try again in a minute", forever) and
    # PostgreSQL's "column does not exist" was a 500; the log said neither what nor what to do.
    from sqlalchemy import create_engine
    engine = create_engine(own_database)
    made(engine)
    engine.dispose()
    behind = create_app({"SETTINGS": replace(settings, database_url=own_database)})
    behind.config["PROPAGATE_EXCEPTIONS"] = False
    client = isolated_client(behind)
    with caplog.at_level("WARNING"):
        for _ in range(3):
            response = client.post("/login", data={"username": "ada.lovelace", "password": "a long password",
                                                   "csrf_token": csrf_token(client)})
            assert_plain_page(response, 503, "Sign-in is not working right now")
            assert "the portal&#39;s database needs updating" in response.get_data(as_text=True)
            assert "Try again in a minute" not in response.get_data(as_text=True)
            assert "Retry-After" not in response.headers
    assert [r.getMessage() for r in caplog.records if r.levelname != "INFO"] == [logged]
    with behind.app_context():
        from portal.db import db
        db.engine.dispose()


@pytest.mark.parametrize("table, column, words", [
    # The teacher is loaded, and the page of her classes meets the missing column: words for staff.
    ("section", "course_title", "Tell your district's IT team: the portal's database needs updating."),
    # Loading her meets it: who she is cannot be told.
    ("person", "hold_reason", "Tell the school office: the portal's database needs updating."),
])
def test_a_signed_in_teacher_is_told_about_a_schema_out_of_step_in_words_for_staff_or_anyone(
        settings, app, own_database, table, column, words):
    from sqlalchemy import create_engine, text

    from portal.db import db
    from portal.migrate import upgrade
    from tests.factories import RosterFactory
    engine = create_engine(own_database)
    upgrade(engine)
    behind = create_app({"SETTINGS": replace(settings, database_url=own_database)})
    behind.config["PROPAGATE_EXCEPTIONS"] = False
    with behind.app_context():
        RosterFactory().person("mr.rogers", role=Role.teacher)
        db.session.remove()
    client = isolated_client(behind)
    assert AuthActions(client).login(username="mr.rogers").status_code == 302
    with engine.begin() as conn:   # a newer portal's migration, while she is signed in
        conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_future_change'"))
    engine.dispose()
    response = client.get("/teacher/")
    assert_plain_page(response, 503, "Sign-in is not working right now")
    assert advice_of(response).startswith(words) and "teacher" not in advice_of(response)
    with behind.app_context():
        db.engine.dispose()


def test_a_form_without_the_portals_referer_is_told_so_not_that_it_was_open_too_long(production, roster):
    """Over HTTPS Flask-WTF refuses a form whose Referer is missing or another site's, its token
    good: "open too long, reload" sent a person in circles. A bad token still hears that."""
    import re
    roster.person("ada.lovelace")
    https = "https://portal.example"
    client = production.test_client()

    def token(path):
        page = client.get(path, base_url=https).get_data(as_text=True)
        return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)

    assert client.post("/login", base_url=https, headers={"Referer": f"{https}/login"}, data={
        "username": "ada.lovelace", "password": "correct horse battery",
        "csrf_token": token("/login")}).status_code == 302
    for referer, words in [(None, "Your browser did not say which page this came from"),
                           ("https://elsewhere.example/", "That came from another website")]:
        headers = {"Referer": referer} if referer else {}
        refused = client.post("/logout", base_url=https, headers=headers, data={"csrf_token": token("/")})
        page = refused.get_data(as_text=True)
        assert refused.status_code == 400 and words in page, page[:500]
        assert "open too long" not in page and "referrer" not in page.lower()
    stale = client.post("/logout", base_url=https, headers={"Referer": f"{https}/"}, data={"csrf_token": "x"})
    assert "This page was open too long" in stale.get_data(as_text=True)
    assert client.get("/", base_url=https).status_code == 200     # still signed in throughout


def test_a_proxy_that_does_not_pass_the_host_is_named_in_the_log(app, settings, roster, caplog):
    """Found by the deployment review: behind an nginx that sends its own Host (127.0.0.1:8000),
    every sign-in was "That came from another website" and the log said nothing. Now it says what
    to set; only hosts, never the page's address."""
    import re
    roster.person("ada.lovelace")
    public = "https://portal.example.org"
    behind = create_app({"SETTINGS": replace(settings, env="production", oidc_issuer=public)})
    client = behind.test_client()
    page = client.get("/login", base_url="https://127.0.0.1:8000").get_data(as_text=True)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
    with caplog.at_level("WARNING", logger="portal.errors"):
        refused = client.post("/login", base_url="https://127.0.0.1:8000",
                              headers={"Referer": f"{public}/login?next=%2Fsecret"},
                              data={"username": "ada.lovelace", "password": "correct horse battery",
                                    "csrf_token": token})
        assert refused.status_code == 400
        # Another site's form is not the proxy's doing: nothing logged for it.
        client.post("/login", base_url="https://127.0.0.1:8000",
                    headers={"Referer": "https://elsewhere.example/"}, data={"csrf_token": token})
    [line] = [r.getMessage() for r in caplog.records if r.name == "portal.errors"]
    assert "Host is '127.0.0.1:8000', not portal.example.org" in line and "proxy_set_header Host" in line
    assert "secret" not in line and "elsewhere" not in line
