"""`python -m kiosk` against the real portal (served on 127.0.0.1 by the live_server fixture):
enroll with a real pairing code, scan a video of a real badge, and follow the hand-off in a
browser-like session that holds the device cookie, up to the student's tiles."""
from __future__ import annotations

import argparse
import json
import logging
import re
from dataclasses import replace

import pytest
import requests
from sqlalchemy import select

import numpy as np

from kiosk import preview as screen
from kiosk.__main__ import Feedback, Kiosk
from kiosk.client import PortalClient
from kiosk.decoder import BadgeRead
from kiosk.scanner import Action, Scanner
from portal.admin.services import add_link_app, grant_app
from portal.badges.kiosk_views import BIND_AGAIN, OUT_OF_ORDER
from portal.badges.kiosks import create_pairing_code, revoke_device
from portal.db import db
from portal.devserver import free_port
from portal.errors import MESSAGES
from portal.models import Badge, KioskDevice
from tests.badges.conftest import issue, world  # noqa: F401  (the badge test school)
from tests.kiosk.helpers import (
    send_once,
    FakeWindow, RecordingPortal, Sandbox, bind_a_browser, write_clips, write_video,
)

SIGN_IN = re.compile(r"^Sign-in: open (\S+) ", re.M)
BIND = re.compile(r"^Browser set-up: open (\S+) ", re.M)


@pytest.fixture
def sandbox(tmp_path):
    return Sandbox(tmp_path / "sandbox")


@pytest.fixture
def pairing_code(redis_client, world):
    return create_pairing_code(db.session, redis_client, world.school).code


@pytest.fixture
def enrolled(sandbox, live_server, pairing_code):
    """This sandbox's kiosk, enrolled with the live portal, its browser bound (--no-browser only
    prints the bind link of each run); returns its stored device."""
    done = sandbox.run("enroll", "--portal", live_server, "--code", pairing_code)
    assert done.returncode == 0, done.stderr
    stored = json.loads((sandbox.config / "device.json").read_text())
    stored["browser"] = bind_a_browser(live_server, stored["credential"])
    return stored


def scan(sandbox, portal, video, *more):
    return sandbox.run("--portal", portal, "--video", str(video), "--no-browser", *more)


def badge_of(person) -> Badge:
    db.session.expire_all()
    return db.session.scalar(select(Badge).where(Badge.person_id == person.id))


def test_enroll_then_scan_signs_the_student_in_to_their_tiles(sandbox, live_server, pairing_code,
                                                              redis_client, world, tmp_path):
    add_link_app(db.session, "Story Time", "https://stories.example/")
    grant_app(db.session, "Story Time", school=world.school.sourced_id)
    token = issue(redis_client, world.student)
    video = write_video(tmp_path / "ada.avi", [token])

    enrolled = sandbox.run("enroll", "--portal", live_server, "--code", pairing_code)
    assert enrolled.returncode == 0, enrolled.stderr
    assert "Maple Elementary" in enrolled.stdout
    stored = json.loads((sandbox.config / "device.json").read_text())
    device = db.session.get(KioskDevice, stored["device_id"])
    assert device.school_id == world.school.id and device.revoked_at is None
    bind_a_browser(live_server, stored["credential"])     # by an earlier run of the kiosk

    run = scan(sandbox, live_server, video, "--once")
    assert run.returncode == 0, run.stderr
    assert token not in run.stdout + run.stderr
    bind_url, handoff_url = BIND.search(run.stdout).group(1), SIGN_IN.search(run.stdout).group(1)
    assert bind_url.startswith(f"{live_server}/kiosk/bind/")
    assert handoff_url.startswith(f"{live_server}/kiosk/handoff/")

    # The device's browser: bound by the bind link, then it opens the hand-off.
    browser = requests.Session()
    assert browser.get(bind_url, timeout=10).status_code == 200
    assert browser.cookies.get("portal_kiosk", path="/kiosk/")
    page = browser.get(handoff_url, timeout=10)
    assert page.status_code == 200 and page.url == f"{live_server}/badges/home"
    assert "Hi, Ada!" in page.text and 'data-app="story-time"' in page.text
    assert "Not you? Sign out" in page.text
    badge = badge_of(world.student)
    assert badge.last_used_device_id == device.id

    # The hand-off works once, and only in the bound browser.
    assert requests.get(handoff_url, timeout=10).status_code == 403
    assert browser.get(handoff_url, timeout=10).status_code == 403


def test_a_handoff_opened_without_the_device_cookie_signs_nobody_in(sandbox, live_server, enrolled,
                                                                    redis_client, world, tmp_path):
    video = write_video(tmp_path / "ada.avi", [issue(redis_client, world.student)])
    run = scan(sandbox, live_server, video, "--once")
    assert run.returncode == 0, run.stderr
    other = requests.Session()
    page = other.get(SIGN_IN.search(run.stdout).group(1), timeout=10)
    assert page.status_code == 403 and "Hi, Ada!" not in page.text


def test_the_same_badge_is_sent_once_while_it_stays_in_view(sandbox, live_server, enrolled,
                                                            redis_client, world, tmp_path):
    token = issue(redis_client, world.student)
    video = write_video(tmp_path / "ada.avi", [token], count=90)   # three seconds of one badge
    run = scan(sandbox, live_server, video)
    assert run.returncode == 0, run.stderr
    assert len(SIGN_IN.findall(run.stdout)) == 1
    assert run.stderr.count("badge read") == 1


def test_two_badges_in_view_sign_in_nobody(sandbox, live_server, enrolled, redis_client, world,
                                           tmp_path):
    tokens = [issue(redis_client, world.student), issue(redis_client, world.classmate)]
    video = write_video(tmp_path / "two.avi", tokens)
    run = scan(sandbox, live_server, video, "--once")
    assert "One badge at a time, please" in run.stdout
    assert not SIGN_IN.search(run.stdout) and "badge read" not in run.stderr
    assert run.returncode == 1 and "video ended" in run.stderr
    assert badge_of(world.student).last_used_at is None
    assert badge_of(world.classmate).last_used_at is None


def test_a_badge_from_another_school_is_refused_plainly(sandbox, live_server, enrolled,
                                                        redis_client, world, tmp_path):
    video = write_video(tmp_path / "far.avi", [issue(redis_client, world.far_student)])
    run = scan(sandbox, live_server, video, "--once")
    assert "That badge didn't work. Ask your teacher." in run.stdout
    assert not SIGN_IN.search(run.stdout) and run.returncode == 1


class TestTooManyTries:
    @pytest.fixture
    def settings(self, base_settings):
        return replace(base_settings, badge_limit_per_device="1 per minute")

    def test_the_child_is_asked_to_wait(self, sandbox, live_server, enrolled, redis_client, world,
                                        tmp_path):
        first, second = issue(redis_client, world.student), issue(redis_client, world.classmate)
        video = write_clips(tmp_path / "two-in-turn.avi", [[first], [second]])
        run = scan(sandbox, live_server, video)
        assert len(SIGN_IN.findall(run.stdout)) == 1
        assert "Too many tries, wait a moment" in run.stdout
        assert badge_of(world.classmate).last_used_at is None


@pytest.mark.parametrize("status", [429, 503])
def test_a_badge_still_held_up_after_the_wait_is_sent_again(status):
    """The portal said "too many tries" or "unavailable" (Retry-After: 1) and never looked at the
    badge: the held badge waits out the pause (not one request per camera frame), and the child
    who keeps holding it up is signed in once the wait is over, without lowering it first."""
    held = BadgeRead(token="spb1_held")
    args = argparse.Namespace(no_browser=True)
    scanner, feedback = Scanner(), Feedback(None)
    with RecordingPortal(badge_replies=[status]) as portal:
        client = PortalClient(portal.url, portal.credential)
        assert scanner.decide(held, 0.0).action is Action.SEND
        assert not send_once(client, scanner, feedback, "spb1_held", 0.0, args, portal.url)
        assert [scanner.decide(held, t).action for t in (0.03, 0.5, 0.97)] == [Action.PAUSED] * 3
        step = scanner.decide(held, 1.1)
        assert step.action is Action.SEND
        assert send_once(client, scanner, feedback, step.token, 1.1, args, portal.url)
        assert scanner.decide(held, 1.5).action is Action.REPEAT
        client.close()
    assert [r.json() for r in portal.to("/kiosk/badge")] == [{"token": "spb1_held", "seq": 1},
                                                             {"token": "spb1_held", "seq": 2}]


@pytest.mark.parametrize("status, again", [(200, Action.AGAIN), (403, Action.SEND)])
def test_a_badge_that_signed_in_is_not_sent_again_at_the_next_wave(status, again):
    """A child waves their badge: once the portal signed them in, it comes back into view after
    three seconds away and the kiosk sends nothing (the window still says it worked; the kiosk
    only asks whether its browser lost its binding: test_bind_again); a card the portal refused
    is tried again."""
    from kiosk.decoder import NO_BADGE
    held = BadgeRead(token="spb1_held")
    args = argparse.Namespace(no_browser=True)
    scanner, feedback = Scanner(), Feedback(None)
    with RecordingPortal(badge_status=status) as portal:
        client = PortalClient(portal.url, portal.credential)
        assert scanner.decide(held, 0.0).action is Action.SEND
        assert send_once(client, scanner, feedback, "spb1_held", 0.1, args, portal.url) == (status == 200)
        assert scanner.decide(NO_BADGE, 1.0).action is Action.NOTHING
        assert scanner.decide(held, 4.0).action is again
        client.close()


def test_an_outage_is_waited_out_briefly_then_longer_and_never_for_a_minute():
    """"Unavailable, try again in 60 s" (an older portal; or a proxy) left the kiosk deaf a minute
    after a blip of a second. The kiosk waits 3 s, then twice as long each time in a row, at most
    15 s; the child sees one steady line meanwhile, not "Hold your badge inside the box"."""
    held = BadgeRead(token="spb1_held")
    args = argparse.Namespace(no_browser=True)
    window = FakeWindow()
    scanner, feedback = Scanner(), Feedback(window)
    frame = np.full((480, 640, 3), 200, np.uint8)
    with RecordingPortal(badge_replies=[503, 503, 503, 503, 503], retry_after="3") as portal:
        client = PortalClient(portal.url, portal.credential)
        waits, now = [], 0.0
        assert scanner.decide(held, now).action is Action.SEND
        for _ in range(5):
            assert not send_once(client, scanner, feedback, "spb1_held", now, args, portal.url)
            shown = set()
            for t in np.arange(now + 0.1, now + 20, 0.1):
                if scanner.decide(held, t).action is Action.SEND:
                    waits.append(round(t - now))
                    now = t
                    break
                feedback.show(frame, held, t)
                shown.add(window.lines[-1])
            assert len(shown) == 1, shown
        assert waits == [3, 3, 6, 12, 15]
        assert window.lines == [screen.WAIT, screen.OFFLINE]     # asked for help from the 3rd
        # An answer: the next outage is waited out briefly again.
        assert send_once(client, scanner, feedback, "spb1_held", now, args, portal.url)
        portal.badge_replies.append(503)
        # (The next child's badge: the one that signed in is not sent again so soon.)
        assert not send_once(client, scanner, feedback, "spb1_next", now + 1, args, portal.url)
        following = BadgeRead(token="spb1_next")
        assert scanner.decide(following, now + 3.9).action is Action.PAUSED
        assert scanner.decide(following, now + 4.1).action is Action.SEND
        client.close()
    assert Scanner().wait_offline(0.0, retry_after=60.0) == 15.0      # a minute, capped


def test_a_portal_that_cannot_be_reached_is_not_asked_every_frame():
    held = BadgeRead(token="spb1_held")
    scanner, gone = Scanner(), PortalClient(f"http://127.0.0.1:{free_port()}", "kd1_x")
    assert scanner.decide(held, 10.0).action is Action.SEND
    assert not send_once(gone, scanner, Feedback(None), "spb1_held", 10.0,
                     argparse.Namespace(no_browser=True), "http://127.0.0.1")
    assert scanner.decide(held, 12.9).action is Action.PAUSED     # OFFLINE_RETRY_SECONDS: 3
    assert scanner.decide(held, 13.1).action is Action.SEND
    gone.close()


# The portal's answers to the kiosk whose advice is not for the person reading the kiosk's log:
# for the API's programmers (portal/badges/kiosk_views.py), or for someone at a browser (503).
ADVICE_FOR_OTHERS = {
    "bind again": (409, BIND_AGAIN, "opening a new set-up link"),
    "out of order": (409, OUT_OF_ORDER, "opening a new set-up link"),
    "bad body": (400, {"error": "Send only the token",
                       "advice": 'The body is {"token": "...", "seq": 1}.'}, "kiosk program"),
    "not JSON": (415, {"error": "Send JSON", "advice": "Use Content-Type: application/json."},
                 "kiosk program"),
    "unavailable": (503, dict(zip(("error", "advice"), MESSAGES[503])), "unavailable for now"),
}


@pytest.mark.parametrize("case", ADVICE_FOR_OTHERS)
def test_the_log_says_what_happened_in_plain_words_not_the_portals_advice(case, caplog):
    """The log quoted the portal's advice to its API's programmers ("Bind it again (POST
    /kiosk/bind, open the link), then scan again.") to the teacher or IT person reading it. It
    says in its own words what happened, and what the kiosk does or what to do: for the answer to
    setting up the browser, and to a badge."""
    status, answer, says = ADVICE_FOR_OTHERS[case]
    caplog.set_level(logging.INFO, logger="kiosk")
    args = argparse.Namespace(no_browser=True)
    with RecordingPortal(answers={"/kiosk/bind": [(status, answer)],
                                  "/kiosk/badge": [(status, answer)]}) as portal:
        client = PortalClient(portal.url, portal.credential)
        kiosk = Kiosk(client, Scanner(), Feedback(None), args, portal.url, live=False)
        kiosk.poll(0.0)
        kiosk.settle(0.0)
        send_once(client, Scanner(), Feedback(None), "spb1_held", 0.0, args, portal.url)
        client.close()
    assert [r.path for r in portal.requests][:2] == ["/kiosk/bind", "/kiosk/badge"]
    logged = caplog.text
    assert answer["error"] not in logged and answer["advice"] not in logged, logged
    assert "POST" not in logged and says in logged, logged
    assert "spb1_held" not in logged and portal.credential not in logged


def test_enroll_with_a_wrong_or_used_code_fails_in_one_line(sandbox, live_server, pairing_code):
    wrong = sandbox.run("enroll", "--portal", live_server, "--code", "ABCD2345")
    assert wrong.returncode == 1
    assert wrong.stderr.strip().splitlines() == [
        "kiosk: That pairing code didn't work. Codes work once, for 10 minutes. Ask for a new one."]
    assert sandbox.run("enroll", "--portal", live_server, "--code", pairing_code).returncode == 0
    again = sandbox.run("enroll", "--portal", live_server, "--code", pairing_code)
    assert again.returncode == 1 and "That pairing code didn't work" in again.stderr


def test_enroll_needs_https_except_on_this_machine(sandbox):
    run = sandbox.run("enroll", "--portal", "http://portal.example.org", "--code", "ABCD2345")
    assert run.returncode == 2
    assert run.stderr.strip() == ("kiosk: the portal address must start with https:// "
                                  "(http:// only for 127.0.0.1 or localhost, for testing)")
    assert not sandbox.config.exists()


def test_enroll_says_when_the_portal_is_unreachable(sandbox):
    url = f"http://127.0.0.1:{free_port()}"
    run = sandbox.run("enroll", "--portal", url, "--code", "ABCD2345")
    assert run.returncode == 1
    assert run.stderr.strip() == f"kiosk: could not enroll: could not reach the portal at {url}"


def test_running_before_enrolling_says_how(sandbox, live_server, tmp_path):
    run = scan(sandbox, live_server, tmp_path / "none.avi")
    assert run.returncode == 1
    assert run.stderr.strip() == (
        f"kiosk: this device is not enrolled: enroll it with a pairing code from a teacher or "
        f"admin (My classes): python -m kiosk enroll --portal {live_server} --code CODE")


def test_a_revoked_device_is_told_to_enroll_again(sandbox, live_server, enrolled, redis_client,
                                                  world, tmp_path):
    revoke_device(db.session, redis_client, db.session.get(KioskDevice, enrolled["device_id"]))
    video = write_video(tmp_path / "ada.avi", [issue(redis_client, world.student)])
    run = scan(sandbox, live_server, video, "--once")
    assert run.returncode == 3
    assert "no longer knows this device" in run.stderr and "python -m kiosk enroll" in run.stderr
    assert "with a pairing code from a teacher or admin" in run.stderr      # what to do first


def test_the_credential_goes_only_to_the_portal_that_issued_it(sandbox, live_server, enrolled,
                                                               tmp_path):
    with RecordingPortal() as elsewhere:
        run = scan(sandbox, elsewhere.url, tmp_path / "none.avi", "--once")
    assert run.returncode == 1 and f"enrolled with {live_server}" in run.stderr
    assert elsewhere.requests == []
