"""The apps page's use of each app in 30 days: counted at most every USE_MAX_AGE (per district, kept
in Redis), said to be as of when it was counted, never shown older than that; and counted on the
spot when Redis cannot keep it."""
from __future__ import annotations

import re

import pytest
import redis

import portal.admin.shared as use
from portal.devserver import free_port
from tests.admin.test_shared_pages import _client, _text, shared  # noqa: F401  (the fixture)
from tests.badges.conftest import FakeClock, let_time_pass
from tests.statements import statements

KEYS = "portal:admin:use:*"


@pytest.fixture
def clock(app):
    fake = FakeClock()
    app.config["PORTAL_CLOCK"] = fake
    return fake


def _reading(app, admin) -> tuple[str, str, int]:
    """The Reading Garden row of /admin/, the page's words, and how many statements read the launches."""
    from portal.db import db
    with statements(db.engine) as found:
        page = admin.get("/admin/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    row = re.search(r'<tr id="app-reading-garden">(.*?)</tr>', html, re.S).group(1)
    counted = [s for s in found if "audit_event" in s and "GROUP BY" in s]
    return _text_of(row), _text(page), len(counted)


def _text_of(html: str) -> str:
    import html as html_module
    return re.sub(r"\s+", " ", html_module.unescape(re.sub(r"<[^>]+>", " ", html)))


def _launch(app, shared):
    browser = _client(app, "ada.lovelace")
    assert browser.get(f"/launch/{shared['saml'].slug}").status_code == 200


def test_the_use_is_counted_once_per_max_age_and_says_when(app, shared, clock, redis_client):
    admin = _client(app, "dee.admin")
    row, text, counted = _reading(app, admin)
    assert "2 launches, 1 person" in row and counted == 1
    as_of = clock.now.astimezone(app.config["SETTINGS"].zone)
    _launch(app, shared)
    row, text, counted = _reading(app, admin)
    assert "2 launches, 1 person" in row and counted == 0        # as counted, and said so
    assert f"Last 30 days, as of {as_of:%H:%M}" in text
    assert f"counted again at most every {int(use.USE_MAX_AGE.total_seconds() // 60)} minutes" in text
    # Redis forgets it by its own clock no later than the page's clock would.
    [key] = redis_client.keys(KEYS)
    assert 0 < redis_client.pttl(key) <= use.USE_MAX_AGE.total_seconds() * 1000

    clock.advance(seconds=use.USE_MAX_AGE.total_seconds() - 1)
    row, text, counted = _reading(app, admin)
    assert "2 launches, 1 person" in row and counted == 0
    assert f"as of {as_of:%H:%M}" in text

    clock.advance(seconds=1)                                      # no older than said: counted again
    row, text, counted = _reading(app, admin)
    assert "3 launches, 1 person" in row and counted == 1
    assert f"as of {clock.now.astimezone(app.config['SETTINGS'].zone):%H:%M}" in text


def test_what_redis_forgot_is_counted_again(app, shared, clock, redis_client):
    admin = _client(app, "dee.admin")
    assert "2 launches" in _reading(app, admin)[0]
    _launch(app, shared)
    assert "2 launches" in _reading(app, admin)[0]                # kept
    let_time_pass(redis_client, KEYS, use.USE_MAX_AGE.total_seconds())
    row, _, counted = _reading(app, admin)
    assert "3 launches" in row and counted == 1


def test_each_district_has_its_own_count(app, shared, clock):
    assert "1 person" in _reading(app, _client(app, "dee.admin"))[0]
    far_row, _, counted = _reading(app, _client(app, "far.admin"))
    assert "not opened" in far_row and counted == 1


@pytest.mark.parametrize("kept", ["not json", '{"as_of": "2020-01-01T00:00:00+00:00", "apps": []}',
                                  '{"as_of": "soon", "apps": [[1, 2]]}', '{"apps": []}', "[]"])
def test_a_kept_count_that_is_old_or_unreadable_is_counted_again(app, shared, clock, redis_client, kept):
    admin = _client(app, "dee.admin")
    district = shared["admin"].district_id
    redis_client.set(f"portal:admin:use:{district}:30", kept)
    row, _, counted = _reading(app, admin)
    assert "2 launches, 1 person" in row and counted == 1
    assert "2 launches, 1 person" in _reading(app, admin)[0]      # and kept anew


def test_the_page_counts_when_redis_fails_the_count(app, shared, clock, redis_client):
    # A real error from Redis on the count's key (the sessions still work): the page counts.
    admin = _client(app, "dee.admin")
    redis_client.rpush(f"portal:admin:use:{shared['admin'].district_id}:30", "x")   # WRONGTYPE for GET
    for _ in range(2):
        row, _, counted = _reading(app, admin)
        assert "2 launches, 1 person" in row and counted == 1


def test_no_redis_at_all_counts_on_the_spot(app, shared, clock):
    from portal.db import db
    away = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    with app.app_context():
        counted = use.recent_use(db.session, away, shared["admin"].district_id, clock.now, 30)
    assert counted.as_of == clock.now
    assert {(u.launches, u.students) for u in counted.apps.values()} == {(2, 1), (1, 1)}
