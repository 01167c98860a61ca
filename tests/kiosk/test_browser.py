"""`python -m kiosk --chromium PATH`: the kiosk's own Chromium (Debian's, headless here), in
which each hand-off replaces every page: tabs no longer pile up over a school day."""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal

import pytest

import kiosk.__main__ as program
from kiosk.browser import Chromium
from portal.badges.token import mint_token
from tests.kiosk.helpers import FakeWindow, LinkBrowser, LiveCamera, RecordingPortal, run_kiosk_here, save_device

CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")
pytestmark = [pytest.mark.no_database,
              pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Debian's chromium")]


class Started(Chromium):
    """The kiosk's Chromium, as the program makes it, kept at hand for the test to ask."""
    made: list["Started"] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        Started.made.append(self)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _run(monkeypatch, portal, folder, timeline) -> tuple[int, LinkBrowser]:
    save_device(folder, portal.url, 7, portal.credential)
    Started.made = []
    monkeypatch.setattr(program, "Chromium", Started)
    links = LinkBrowser()          # the desktop's browser: the kiosk must not use it
    argv = ["--portal", portal.url, "--config-dir", str(folder), "--chromium", CHROMIUM,
            *(f"--chromium-flag={flag}" for flag in FLAGS)]
    try:
        return run_kiosk_here(monkeypatch, argv, LiveCamera(timeline), links, FakeWindow()), links
    finally:
        for browser in Started.made:     # the program closes it; in case it did not
            if browser.pid is not None:
                os.killpg(browser.pid, signal.SIGKILL)


def test_three_hand_offs_leave_one_page_at_the_last(monkeypatch, tmp_path, caplog):
    pages = []

    def look():
        pages.append([page["url"] for page in Started.made[0].pages()])
    a, b, c = mint_token(), mint_token(), mint_token()
    with RecordingPortal() as portal, caplog.at_level(logging.INFO):
        status, links = _run(monkeypatch, portal, tmp_path / "kiosk", [
            (3, None), (2.5, [a]), (1, None), (2.5, [b]), (1, None), (2.5, [c]), (2, None, look)])
    assert status == 0 and links.opened == []
    opened = [r.path for r in portal.requests if r.method == "GET" and r.path.startswith("/kiosk/")]
    assert [path.split("/")[2] for path in opened] == ["bind", "handoff", "handoff", "handoff"]
    assert len(portal.to("/kiosk/badge")) == 3
    # One page, the last hand-off's; the bind page and the other two are gone.
    assert pages == [[portal.url + opened[-1]]]
    # Its profile is the kiosk's own, and the browser is closed when the kiosk stops.
    [browser] = Started.made
    assert browser.folder == tmp_path / "kiosk" / "chromium" and browser.folder.is_dir()
    assert browser.pid is None
    # The log never shows a one-time link.
    for path in opened:
        assert path.rsplit("/", 1)[1] not in caplog.text


def test_a_refused_badge_leaves_only_the_page_that_names_no_one(monkeypatch, tmp_path):
    pages = []

    def look():
        pages.append([page["url"] for page in Started.made[0].pages()])
    first = f"/kiosk/handoff/{secrets.token_urlsafe(32)}"
    with RecordingPortal() as portal:
        portal.answers["/kiosk/badge"] = [
            (200, {"handoff_url": portal.url + first, "expires_in": 30}),
            (403, {"error": "That badge didn't work", "advice": "Ask your teacher for help."})]
        status, _ = _run(monkeypatch, portal, tmp_path, [
            (3, None), (2.5, [mint_token()]), (1, None), (2.5, [mint_token()]), (2, None, look)])
    assert status == 0
    assert [r.path for r in portal.requests if r.method == "GET" and r.path != "/favicon.ico"
            ][-2:] == [first, "/badges/next"]
    assert pages == [[f"{portal.url}/badges/next"]]


def test_a_chromium_that_stopped_is_started_again_at_the_next_link(tmp_path, caplog):
    browser = Chromium(CHROMIUM, tmp_path / "chromium", FLAGS)
    try:
        browser.show("data:text/html,one")
        browser.show("data:text/html,two")
        assert [page["url"] for page in browser.pages()] == ["data:text/html,two"]
        first = browser.pid
        os.killpg(first, signal.SIGKILL)         # closed, or it crashed
        with caplog.at_level(logging.INFO):
            browser.show("data:text/html,three")
        assert "Chromium stopped (closed, or it crashed): starting it again" in caplog.text
        assert browser.pid != first and not _alive(first)
        assert [page["url"] for page in browser.pages()] == ["data:text/html,three"]
        assert "data:" not in caplog.text
    finally:
        browser.close()
    assert browser.pid is None


def test_chromium_is_chosen_on_the_command_line_and_not_with_no_browser():
    parse = program._parsers()[1].parse_args
    args = parse(["--portal", "https://p.example", "--chromium", CHROMIUM, "--chromium-flag=--kiosk"])
    assert (args.chromium, args.chromium_flag, args.no_browser) == (CHROMIUM, ["--kiosk"], False)
    assert parse(["--portal", "https://p.example"]).chromium is None     # webbrowser, as before
    with pytest.raises(SystemExit):
        parse(["--portal", "https://p.example", "--no-browser", "--chromium", CHROMIUM])
