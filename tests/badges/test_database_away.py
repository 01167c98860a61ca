"""A scan that fails on the database (away, or its write lock held past the busy timeout)
changes nothing: not the child signed in at the device, not the hand-off waiting for its browser,
not the badge's count of scans. The device hears to try again in seconds, in its words and its
Retry-After."""
from __future__ import annotations

from dataclasses import replace

import pytest

from tests.auth.helpers import database_locked
from tests.badges.conftest import issue


@pytest.fixture
def settings(base_settings):
    return replace(base_settings, badge_limit_per_badge="2 per 5 minutes")


def _scan_meets_the_database_away(kiosk, token) -> None:
    answer = kiosk.scan(token)
    assert answer.status_code == 503, answer.get_data(as_text=True)[:300]
    assert answer.headers["Retry-After"] == "3"
    assert answer.json == {"error": "Sign-in is unavailable", "advice": "Try again in a few seconds."}


def test_a_scan_that_fails_on_the_database_leaves_the_child_at_the_device_signed_in(
        redis_client, world, kiosk, monkeypatch):
    # Found by the operations review: with SQLite's write lock held by another process, a scan
    # got the 503 after the busy timeout, but the child at the device had been signed out first.
    assert kiosk.sign_in(issue(redis_client, world.student)).status_code == 302
    alan = issue(redis_client, world.classmate)
    with database_locked(monkeypatch):
        _scan_meets_the_database_away(kiosk, alan)
    assert kiosk.browser.get("/badges/home").status_code == 200


def test_a_scan_that_fails_on_the_database_leaves_the_waiting_handoff(redis_client, world, kiosk,
                                                                      monkeypatch):
    # ...and the hand-off the device's browser was about to open said "That sign-in has run out".
    alan = issue(redis_client, world.classmate)
    waiting = kiosk.scan(alan).json["handoff_url"]
    ada = issue(redis_client, world.student)
    with database_locked(monkeypatch):
        _scan_meets_the_database_away(kiosk, ada)
    assert kiosk.browser.get(waiting).status_code == 302
    assert kiosk.browser.get("/badges/home").status_code == 200


def test_scans_that_fail_on_the_database_do_not_count_against_the_badge(redis_client, world, kiosk,
                                                                        monkeypatch):
    # A kiosk sends a badge held up every few seconds through an outage: counted, the badge was
    # refused as tried too often (two per five minutes here) once the database was back.
    ada = issue(redis_client, world.student)
    with database_locked(monkeypatch):
        for _ in range(3):
            _scan_meets_the_database_away(kiosk, ada)
    assert kiosk.sign_in(ada).status_code == 302


def test_browser_scans_that_fail_on_the_database_do_not_count_against_the_badge(
        app, redis_client, world, monkeypatch):
    from portal.badges.policy import set_policy
    from portal.db import db
    from tests.badges.conftest import csrf_from, new_client
    set_policy(db.session, world.school, allow_browser_scanner=True)
    ada = issue(redis_client, world.student)
    browser = new_client(app)

    def scan():
        csrf = csrf_from(browser, "/login")
        return browser.post("/badge/scan", json={"token": ada}, headers={"X-CSRFToken": csrf})
    with database_locked(monkeypatch):
        assert [scan().status_code for _ in range(3)] == [503] * 3
    assert scan().status_code == 200


def test_a_refused_scan_counts_even_when_its_record_fails(redis_client, world, kiosk, monkeypatch):
    # Found by review: a voided badge's scan is refused, and its record of the reuse written
    # before the refusal; when that write failed (the 503), the scan was taken back from the
    # badge's count like an outage's, so a refused badge could be tried without limit.
    from sqlalchemy import select

    from portal.badges.services import void_badges_for_person
    from portal.db import db
    from portal.models import Event
    ada = issue(redis_client, world.student)
    void_badges_for_person(db.session, redis_client, world.student, reason="lost")
    assert kiosk.sign_in(issue(redis_client, world.classmate)).status_code == 302     # Alan
    with database_locked(monkeypatch):
        for _ in range(2):
            assert kiosk.scan(ada).status_code == 503
    # A refusal signs the device's child out, but only once its record is written: after a 503
    # the device is as it was.
    assert kiosk.browser.get("/badges/home").status_code == 200
    # Both counted (two per five minutes): the next is refused by the limit, before its record.
    assert kiosk.scan(ada).status_code == 403
    assert kiosk.browser.get("/badges/home").status_code == 302
    assert db.session.scalars(select(Event).where(Event.kind == "badge_voided_reuse")).all() == []
