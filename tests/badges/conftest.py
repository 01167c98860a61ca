"""Badge test fixtures: a small school world, a settable clock, and a kiosk that pairs, enrolls,
binds its browser and scans, all through the real routes."""
from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
from flask.testing import FlaskClient

from portal.models import Role

PASSWORD = "correct horse battery"


class IsolatedClient(FlaskClient):
    """Every request in its own app context, as under a real server (no shared `g` or session)."""

    def open(self, *args, **kwargs):
        return contextvars.Context().run(super().open, *args, **kwargs)


def new_client(app) -> FlaskClient:
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture
def client(app):
    return new_client(app)


class FakeClock:
    """Real time until a test moves it."""

    def __init__(self):
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(app) -> FakeClock:
    fake = FakeClock()
    app.config["PORTAL_CLOCK"] = fake
    return fake


def let_time_pass(redis_client, pattern: str, seconds: float) -> None:
    """As if `seconds` passed on Redis's clock for the keys matching `pattern`: each loses that
    much of the time it had left (gone when none is left). One-time codes live by Redis's clock,
    not a server's (several servers' clocks may differ), so the app's fake clock cannot age them."""
    for key in redis_client.scan_iter(pattern):
        left = redis_client.pttl(key)
        if left > seconds * 1000:
            redis_client.pexpire(key, int(left - seconds * 1000))
        elif left != -1:
            redis_client.delete(key)


def let_sessions_idle(redis_client, seconds: float, sids=None) -> None:
    """As if the sessions (those with these ids; all, without) were left alone for `seconds`:
    their keys lose that much time on Redis's clock (let_time_pass), and the idle deadlines the
    sweep reads (portal.sessions.WATCHED, kept by the servers' clocks) come that much nearer."""
    from portal.sessions import PREFIX, WATCHED
    for pattern in [PREFIX + "*"] if sids is None else [PREFIX + sid for sid in sids]:
        let_time_pass(redis_client, pattern, seconds)
    for member, deadline in redis_client.zrange(WATCHED, 0, -1, withscores=True):
        if sids is None or member.decode() in sids:
            redis_client.zadd(WATCHED, {member: deadline - seconds}, xx=True)


@dataclass
class World:
    school: object
    other_school: object
    section: object
    other_section: object
    teacher: object
    other_teacher: object
    student: object          # grade 01: badge alone
    classmate: object        # grade 01, same section
    other_student: object    # grade 01, the other section
    older_student: object    # grade 04: badge and PIN (the default policy)
    school_admin: object
    district_admin: object
    far_student: object      # grade 01 at the other school


@pytest.fixture
def world(roster) -> World:
    maple = roster.school("maple", "Maple Elementary")
    oak = roster.school("oak", "Oak Elementary")
    room4 = roster.section(maple, "room4", "Room 4", grades="01")
    room5 = roster.section(maple, "room5", "Room 5", grades="01")
    room9 = roster.section(oak, "room9", "Room 9", grades="01")
    p = roster.person
    return World(
        school=maple, other_school=oak, section=room4, other_section=room5,
        teacher=p("t.four", role=Role.teacher, schools=[maple], sections=[room4], given="Tess", family="Four"),
        other_teacher=p("t.five", role=Role.teacher, schools=[maple], sections=[room5], given="Finn", family="Five"),
        student=p("ada", schools=[maple], sections=[room4], grades="01", given="Ada", family="Lovelace"),
        classmate=p("alan", schools=[maple], sections=[room4], grades="01", given="Alan", family="Turing"),
        other_student=p("grace", schools=[maple], sections=[room5], grades="01", given="Grace", family="Hopper"),
        older_student=p("katherine", schools=[maple], sections=[room4], grades="04", given="Katherine", family="Johnson"),
        school_admin=p("principal", role=Role.school_admin, schools=[maple], given="Pat", family="Principal"),
        district_admin=p("district", role=Role.district_admin, given="Dee", family="District"),
        far_student=p("edsger", schools=[oak], sections=[room9], grades="01", given="Edsger", family="Dijkstra"),
    )


def past_claim(client, location: str) -> str:
    """Where a badge sign-in on its way to an app goes after the page that claims its tab
    (/badges/claim, which a browser leaves at once by script): that page's `next`."""
    from html import unescape
    from urllib.parse import parse_qs, urlsplit
    assert location.startswith("/badges/claim?"), location
    page = client.get(location)
    html = page.get_data(as_text=True)
    going_to = re.search(r'data-next="([^"]+)"', html)
    assert page.status_code == 200 and going_to, html[:300]
    assert unescape(going_to.group(1)) == parse_qs(urlsplit(location).query)["next"][0]
    return unescape(going_to.group(1))


def csrf_from(client, path="/") -> str:
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client, username: str, password: str = PASSWORD):
    """Sign in with a password; return the CSRF token of the new session."""
    token = csrf_from(client, "/login")
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return csrf_from(client, "/")


def staff_post(client, csrf: str, path: str, **data):
    return client.post(path, json=data, headers={"X-CSRFToken": csrf, "Accept": "application/json"})


@dataclass
class Kiosk:
    """A classroom device: its API calls (Bearer credential) and its own browser."""
    app: object
    credential: str
    device_id: int
    api: FlaskClient = field(init=False)
    browser: FlaskClient = field(init=False)

    def __post_init__(self):
        self.api = new_client(self.app)
        self.browser = new_client(self.app)

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.credential}"}

    def bind_browser(self) -> None:
        answer = self.api.post("/kiosk/bind", json={}, headers=self.headers)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert self.browser.get(answer.json["bind_url"]).status_code == 200

    def scan(self, token):
        return self.api.post("/kiosk/badge", json={"token": token}, headers=self.headers)

    def sign_in(self, token):
        """Scan, then open the hand-off in this device's browser; return the browser's answer."""
        answer = self.scan(token)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return self.browser.get(answer.json["handoff_url"])


def enroll_kiosk(app, redis_client, school, *, bind=True) -> Kiosk:
    from portal.badges.kiosks import create_pairing_code
    from portal.db import db
    code = create_pairing_code(db.session, redis_client, school).code
    answer = new_client(app).post("/kiosk/enroll", json={"code": code})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    kiosk = Kiosk(app, answer.json["credential"], answer.json["device_id"])
    if bind:
        kiosk.bind_browser()
    return kiosk


@pytest.fixture
def kiosk(app, redis_client, world) -> Kiosk:
    return enroll_kiosk(app, redis_client, world.school)


def issue(redis_client, person, clock=None, **kwargs) -> str:
    from portal.badges.services import issue_badge
    from portal.db import db
    if clock is not None:
        kwargs["clock"] = clock
    return issue_badge(db.session, redis_client, person, **kwargs).token


def session_data(redis_client, client) -> dict | None:
    """What Redis holds for the client's session (None when there is none)."""
    import json
    from portal.sessions import PREFIX
    cookie = client.get_cookie("portal_session")
    if cookie is None:
        return None
    raw = redis_client.get(PREFIX + cookie.value.rsplit(".", 1)[0])
    return json.loads(raw) if raw else None


def session_key(client) -> str:
    from portal.sessions import PREFIX
    return PREFIX + client.get_cookie("portal_session").value.rsplit(".", 1)[0]
