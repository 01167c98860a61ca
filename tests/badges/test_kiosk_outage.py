"""Redis away: during a scan the device API answers JSON (503, Retry-After) whatever the device
put in Accept, so a kiosk knows to wait, and the device's browser gets the plain page; no route
answers a 500."""
from __future__ import annotations

import re
from collections import Counter

import redis

from tests.badges.conftest import enroll_kiosk, issue, login, new_client
from tests.test_errors import assert_unavailable, outage_app, own_redis  # noqa: F401  (fixtures)


def test_a_scan_while_redis_is_away_reads_as_wait_and_retry(outage_app, own_redis, world):
    store = redis.Redis.from_url(own_redis.url)
    kiosk = enroll_kiosk(outage_app, store, world.school)
    token = issue(store, world.student)
    store.close()

    own_redis.stop()
    answer = kiosk.scan(token)      # no Accept header at all
    # A few seconds, not a minute: a blip of a second must not leave the kiosk deaf for 60 s
    # (it backs off by itself while the outage lasts).
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "3"
    assert answer.json == {"error": "Sign-in is unavailable", "advice": "Try again in a few seconds."}
    bind = kiosk.api.post("/kiosk/bind", json={}, headers=kiosk.headers)
    enroll = kiosk.api.post("/kiosk/enroll", json={"code": "ABCD2345"})
    assert [(a.status_code, a.headers["Retry-After"]) for a in (bind, enroll)] == [(503, "3")] * 2
    page = kiosk.browser.get("/kiosk/handoff/" + "A" * 43)
    assert_unavailable(page)
    assert page.headers["Retry-After"] == "60"      # a person's page: try again in a minute

    own_redis.start()
    assert kiosk.sign_in(token).status_code == 302


def test_with_redis_away_no_route_answers_a_500(outage_app, own_redis, world):
    """Every route, by a signed-in teacher and student, a stranger and an enrolled kiosk, with
    Redis stopped: 503 where the route needs Redis, never a 500."""
    store = redis.Redis.from_url(own_redis.url)
    kiosk = enroll_kiosk(outage_app, store, world.school)
    store.close()
    callers = []
    for username in ("t.four", "ada"):
        client = new_client(outage_app)
        callers.append((username, client, {"X-CSRFToken": login(client, username)}))
    callers += [("stranger", new_client(outage_app), {}), ("kiosk", kiosk.api, kiosk.headers)]

    own_redis.stop()
    failures, answers = [], Counter()
    for rule in outage_app.url_map.iter_rules():
        path = re.sub(r"<[^>]+>", "1", rule.rule)
        for who, client, headers in callers:
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                answer = client.open(path, method=method, headers=headers,
                                     json=None if method == "GET" else {"token": "x", "school": "1"})
                answers[answer.status_code] += 1
                if answer.status_code == 500:
                    failures.append(f"{who} {method} {path}")
    assert answers[503] > 50, answers
    assert failures == []
