"""The kiosk program, run in this process against the live portal with a real-time camera and a
browser of its own: when that browser loses its binding (cookies cleared, the bind link opened
too late on a slow boot), the kiosk hears it from the portal, binds it again and tells the child
to scan again, instead of "Hi! Look at the screen." over a page that says the sign-in ran out."""
from __future__ import annotations

import pytest

from kiosk import preview as screen
from tests.badges.conftest import clock, enroll_kiosk, issue, let_time_pass, world  # noqa: F401  (fixtures)
from tests.kiosk.helpers import FakeWindow, LinkBrowser, LiveCamera, run_kiosk_here, save_device

NOT_SET_UP = "This browser is not set up for the classroom device"


@pytest.fixture
def device(app, redis_client, world, live_server, tmp_path):   # noqa: F811
    """An enrolled device whose browser was bound once (by another run): its credential saved
    for the kiosk program, which binds a browser of its own when it starts."""
    kiosk = enroll_kiosk(app, redis_client, world.school)
    save_device(tmp_path / "kiosk", live_server, kiosk.device_id, kiosk.credential)
    return tmp_path / "kiosk"


def _run(monkeypatch, live_server, device, timeline, browser):
    window = FakeWindow()
    status = run_kiosk_here(monkeypatch, ["--portal", live_server, "--config-dir", str(device)],
                            LiveCamera(timeline), browser, window)
    return status, window


def test_a_browser_whose_cookies_were_cleared_is_bound_again(monkeypatch, live_server, device,
                                                             redis_client, world):  # noqa: F811
    mia, alan = issue(redis_client, world.student), issue(redis_client, world.classmate)
    browser = LinkBrowser()
    status, window = _run(monkeypatch, live_server, device, [
        (0.5, None), (2, [mia]), (1, None, browser.forget_cookies), (2, [alan]), (2.5, None),
        (6, [alan]), (0.5, None)], browser)
    assert status == 0
    assert browser.opened == [
        ("bind", 200, "This browser is ready"), ("handoff", 200, "Hi, Ada!"),
        ("handoff", 403, NOT_SET_UP),                 # Alan's first scan: the cookie was gone
        ("bind", 200, "This browser is ready"),       # his second: the kiosk binds again...
        ("handoff", 200, "Hi, Alan!")]                # ...and sends his badge once it is bound
    assert screen.GETTING_READY in window.lines


def test_a_bind_link_opened_too_late_is_followed_by_a_new_one(monkeypatch, live_server, device,
                                                              redis_client, world, clock):  # noqa: F811
    mia = issue(redis_client, world.student)
    browser = LinkBrowser()

    def slow_boot(url):
        if not browser.opened:
            # The browser comes up after the link's 30 seconds.
            let_time_pass(redis_client, "portal:kiosk:bind:*", 31)
    browser.before_open = slow_boot
    status, window = _run(monkeypatch, live_server, device, [(0.5, None), (5, [mia]), (0.5, None)],
                          browser)
    assert status == 0
    assert browser.opened == [
        ("bind", 403, "That set-up link has run out"), ("bind", 200, "This browser is ready"),
        ("handoff", 200, "Hi, Ada!")]
    assert window.lines[window.lines.index(screen.GETTING_READY) + 1:].count(screen.SIGNED_IN) == 1
