"""`portal sessions sweep` at scale: it reads only the watched sessions whose idle deadline has
passed (portal.sessions.WATCHED), so its Redis work follows the sessions that ended, not the live
ones; none is left behind however many there are; two sweeps at once tell each app once; a
session slid while the sweep looks is not ended; and sessions watched before the upgrade that
brought WATCHED are still found. The apps are the tests' real back-channel logout receivers."""
from __future__ import annotations

import itertools
import threading
import time

import pytest
import redis

from portal import sessions
from portal.sessions import PREFIX, sweep_ended_sessions
from portal.sso.oidc.backchannel import wait_for_deliveries
from tests.badges.conftest import let_sessions_idle, let_time_pass, new_client
from tests.conftest import AuthActions
from tests.sso import test_oidc_backchannel as backchannel, test_oidc_support as support
from tests.sso.test_oidc_backchannel import IDLE, launch, logout_tokens
from tests.test_sessions import sid_of

# Their fixtures: each request in its own app context, an app that listens at its endpoint.
client, endpoint, listening_app = backchannel.client, backchannel.endpoint, backchannel.listening_app
oidc_world = support.oidc_world


_pupils = itertools.count(1)


class Student:
    def __init__(self, browser, sid: str, app_sid: str):
        self.browser, self.sid, self.app_sid = browser, sid, app_sid


def students_in_the_app(app, roster, world, count: int) -> list[Student]:
    """`count` more students of the app's school, each signed in on a browser of their own and
    signed in to the app through it (so the app is to hear when that session ends)."""
    found = []
    for _ in range(count):
        username = f"pupil.{next(_pupils)}"
        roster.person(username, schools=[world.school], sections=[world.section])
        browser = new_client(app)
        assert AuthActions(browser).login(username=username).status_code == 302
        found.append(Student(browser, sid_of(browser), launch(browser, world)["sid"]))
    return found


def told_sids(client, endpoint) -> list[str]:
    return sorted(claims["sid"] for claims, _ in logout_tokens(client, endpoint))


def redis_calls(redis_client) -> int:
    """Commands Redis has run so far, those a script ran counted each. Left out: the INFOs asking,
    and loading a script (once a process: an EVALSHA Redis does not know yet fails, doing
    nothing, and SCRIPT LOAD follows)."""
    return sum(stats["calls"] - stats.get("failed_calls", 0)
               for name, stats in redis_client.info("commandstats").items()
               if name != "cmdstat_info" and not name.startswith("cmdstat_script"))


def sweep(app, client) -> int:
    with app.app_context():
        return sweep_ended_sessions(client)


def test_sessions_beyond_what_one_run_looks_at_are_told_by_the_next_runs_none_left_behind(
        app, client, roster, redis_client, listening_app, endpoint):
    # Each run looks at 2 sessions at most (the portal's limit is 100,000): 8 live watched
    # sessions and 6 that timed out. The sweep before this one restarted its SCAN every run and
    # stopped after `limit` sessions with ties, live ones included: once those first in the
    # keyspace were live, the others were never reached.
    live = students_in_the_app(app, roster, listening_app, 8)
    gone = students_in_the_app(app, roster, listening_app, 6)
    let_sessions_idle(redis_client, IDLE, [s.sid for s in gone])
    with app.app_context():
        runs = [sweep_ended_sessions(redis_client, limit=2) for _ in range(4)]
    assert runs == [2, 2, 2, 0]
    assert told_sids(client, endpoint) == sorted(s.app_sid for s in gone)    # each once
    assert all(s.browser.get("/").status_code == 200 for s in live)          # still signed in


def test_the_sweeps_redis_work_follows_the_sessions_that_ended_not_the_live_ones(
        app, client, roster, redis_client, listening_app, endpoint, monkeypatch):
    monkeypatch.setattr(sessions, "SWEEP_BATCH", 2)
    students_in_the_app(app, roster, listening_app, 4)
    sweep(app, redis_client)             # the first run after the upgrade looks through Redis once
    calls = []
    for more in (0, 16):                 # live watched sessions: 4, then 20
        students_in_the_app(app, roster, listening_app, more)
        gone = students_in_the_app(app, roster, listening_app, 3)
        let_sessions_idle(redis_client, IDLE, [s.sid for s in gone])
        before = redis_calls(redis_client)
        assert sweep(app, redis_client) == 3
        calls.append(redis_calls(redis_client) - before)
    assert calls[0] == calls[1]          # five times the live sessions, the same work
    # Per ended session: its look and claim (PTTL, ZREM), its ties taken (SMEMBERS, DEL) and its
    # end marked (SET); per batch of 2, a read (ZRANGEBYSCORE) and the script (EVALSHA); per run,
    # the one-time fill's marker read (EXISTS) and the read that finds no more.
    assert calls[0] == 3 * 5 + 2 * 2 + 2
    assert len(logout_tokens(client, endpoint)) == 6


class Lockstep(redis.Redis):
    """A client for two sweeps at once that both read each batch before either looks at it (the
    worst case: two cron runs, or two servers' crons, over the same sessions)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.barrier = threading.Barrier(2, timeout=20)

    def zrangebyscore(self, *args, **kwargs):
        found = super().zrangebyscore(*args, **kwargs)
        if found:
            self.barrier.wait()
        return found


def test_two_sweeps_at_once_tell_each_app_once(app, client, roster, redis_client, redis_server,
                                               listening_app, endpoint, monkeypatch):
    monkeypatch.setattr(sessions, "SWEEP_BATCH", 2)
    students_in_the_app(app, roster, listening_app, 3)
    gone = students_in_the_app(app, roster, listening_app, 5)
    let_sessions_idle(redis_client, IDLE, [s.sid for s in gone])
    both = Lockstep.from_url(redis_server.url)
    told, failed = [], []

    def run():
        try:
            told.append(sweep(app, both))
        except Exception as e:  # noqa: BLE001  (said below, not lost in a thread)
            failed.append(e)
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failed and len(told) == 2 and sum(told) == 5
    assert told_sids(client, endpoint) == sorted(s.app_sid for s in gone)    # each app once
    assert redis_client.zcard(sessions.WATCHED) == 3                         # the live ones


class SlidOnRead(redis.Redis):
    """A client whose sweep, once it has read which deadlines passed, lets `browser` load a page
    (another worker's request) before it looks at them."""
    browser = None

    def zrangebyscore(self, *args, **kwargs):
        found = super().zrangebyscore(*args, **kwargs)
        if found and self.browser is not None:
            assert self.browser.get("/").status_code == 200
        return found


def test_a_session_slid_just_before_the_sweep_looks_at_it_is_not_ended(
        app, client, roster, redis_client, redis_server, listening_app, endpoint):
    [student] = students_in_the_app(app, roster, listening_app, 1)
    sweep(app, redis_client)
    # Its deadline has passed as the sweep reads it (its clock ahead of the server's that slid
    # it), while Redis still holds the session; and the student loads a page just then.
    redis_client.zadd(sessions.WATCHED, {student.sid: time.time() - 1}, xx=True)
    slid = SlidOnRead.from_url(redis_server.url)
    slid.browser = student.browser
    assert sweep(app, slid) == 0
    assert wait_for_deliveries(10) and endpoint.posts == []
    assert student.browser.get("/").status_code == 200                       # still signed in
    deadline = redis_client.zscore(sessions.WATCHED, student.sid)
    assert deadline == pytest.approx(time.time() + IDLE, abs=60)             # moved on with it
    let_sessions_idle(redis_client, IDLE)          # now it does time out
    assert sweep(app, redis_client) == 1
    assert told_sids(client, endpoint) == [student.app_sid]


def test_sessions_watched_before_the_upgrade_are_still_swept(app, client, roster, redis_client,
                                                             runner, listening_app, endpoint):
    first, second = students_in_the_app(app, roster, listening_app, 2)
    # Redis as the code before the upgrade left it: each session's ties with its watch, and no
    # watched set (the first sweep after the upgrade has not run).
    redis_client.delete(sessions.WATCHED)
    let_time_pass(redis_client, PREFIX + first.sid, IDLE)            # one timed out before
    result = runner.invoke(args=["sessions", "sweep"])
    assert "1 session had timed out" in result.output, result.output
    assert told_sids(client, endpoint) == [first.app_sid]
    # The other was entered at the deadline its key has, and found when it times out later, by a
    # run that does not look through Redis again.
    assert redis_client.zscore(sessions.WATCHED, second.sid) == pytest.approx(time.time() + IDLE,
                                                                               abs=60)
    let_sessions_idle(redis_client, IDLE)
    scans = redis_client.info("commandstats").get("cmdstat_scan", {}).get("calls", 0)
    assert "1 session had timed out" in runner.invoke(args=["sessions", "sweep"]).output
    assert redis_client.info("commandstats").get("cmdstat_scan", {}).get("calls", 0) == scans
    assert told_sids(client, endpoint) == sorted([first.app_sid, second.app_sid])
