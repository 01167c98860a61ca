"""Redis away during a scan: the device API answers JSON (503, Retry-After) whatever the device
put in Accept, so a kiosk knows to wait; the device's browser gets the plain page."""
from __future__ import annotations

import redis

from tests.badges.conftest import enroll_kiosk, issue
from tests.test_errors import assert_unavailable, outage_app, own_redis  # noqa: F401  (fixtures)


def test_a_scan_while_redis_is_away_reads_as_wait_and_retry(outage_app, own_redis, world):
    store = redis.Redis.from_url(own_redis.url)
    kiosk = enroll_kiosk(outage_app, store, world.school)
    token = issue(store, world.student)
    store.close()

    own_redis.stop()
    answer = kiosk.scan(token)      # no Accept header at all
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "60"
    assert answer.json == {"error": "Sign-in is unavailable", "advice": "Try again in a minute."}
    assert_unavailable(kiosk.browser.get("/kiosk/handoff/" + "A" * 43))

    own_redis.start()
    assert kiosk.sign_in(token).status_code == 302
