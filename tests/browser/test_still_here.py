"""The tiles page of a badge sign-in, left alone on a shared classroom device, in a real Chromium
(its clock under the test's control): after two minutes untouched it asks "Are you still here?"
with a countdown; "I'm still here" keeps the child signed in; no answer signs out, and the device
is ready for the next child (the scanner, or a kiosk's page that names no one)."""
from __future__ import annotations

import re

import pytest
import requests

from portal.badges.kiosks import create_pairing_code
from portal.badges.policy import set_policy
from portal.db import db
from tests.badges import conftest as badge_school
from tests.badges.conftest import issue
from tests.badges import test_browser as kiosk_tests
from tests.badges.test_browser import KioskProgram

pytestmark = pytest.mark.browser

world = badge_school.world  # the badge tests' school, a fixture here too
kiosk_page = kiosk_tests.kiosk_page  # a touch screen's page, and what CSP refused on it


def _scanner_session(base: str, token: str) -> requests.Session:
    """A sign-in at the in-browser scanner, as its page makes it (the token posted)."""
    http = requests.Session()
    page = http.get(f"{base}/badge?school=maple", timeout=10).text
    csrf = re.search(r'data-csrf="([^"]+)"', page).group(1)
    answer = http.post(f"{base}/badge/scan", json={"token": token},
                       headers={"X-CSRFToken": csrf}, timeout=10)
    assert answer.status_code == 200, answer.text
    return http


def kiosk_signed_in(page, base: str, redis_client, world) -> KioskProgram:
    """A kiosk enrolled at the world's school, its browser (`page`) bound, and Ada's badge
    scanned: her tiles open in `page`, as the kiosk's hand-off opens them."""
    kiosk = KioskProgram(base, create_pairing_code(db.session, redis_client, world.school).code)
    page.goto(kiosk.bind_url())
    page.goto(kiosk.scan(issue(redis_client, world.student)))
    page.wait_for_url(f"{base}/badges/home")
    return kiosk


def left_for_no_one(page, base: str, problems, go) -> None:
    """`go()` sends the page to the one that names no one ("Scan your badge"): Ada's name is
    nowhere on it, and the browser refused nothing on the way."""
    with page.expect_navigation(url=f"{base}/badges/next"):
        go()
    assert page.get_by_role("heading", name="Scan your badge").is_visible()
    assert not page.get_by_text("Ada").count() and not problems


def _still_here(page):
    return page.get_by_role("dialog", name="Are you still here?")


def test_left_alone_the_tiles_ask_then_sign_out_to_the_scanner(app, redis_client, world,
                                                               live_server, kiosk_page):
    set_policy(db.session, world.school, allow_browser_scanner=True)
    db.session.commit()
    page, problems = kiosk_page
    page.clock.install()
    http = _scanner_session(live_server, issue(redis_client, world.student))
    page.context.add_cookies([{"name": c.name, "value": c.value, "url": live_server}
                              for c in http.cookies])
    page.goto(f"{live_server}/badges/home")
    assert page.get_by_role("heading", name="Hi, Ada!").is_visible()
    signout = page.get_by_role("button", name="Not you? Sign out")
    box = signout.bounding_box()
    assert box["height"] >= 48 and box["width"] >= 48 and signout.locator("svg").count() == 1

    page.clock.run_for(110_000)
    assert not _still_here(page).is_visible()
    page.mouse.move(200, 300)            # someone is here: the two minutes start again
    page.clock.run_for(60_000)
    assert not _still_here(page).is_visible()
    page.clock.run_for(61_000)
    dialog = _still_here(page)
    assert dialog.is_visible()
    # Shown within the last second of those 121 (when the move landed on the page's clock).
    shown = int(page.inner_text("#still-here-seconds"))
    assert shown in (19, 20)
    assert dialog.locator("svg").count() >= 2     # a picture leads; the button has one too
    yes = page.get_by_role("button", name="I'm still here")
    assert yes.is_visible() and yes.bounding_box()["height"] >= 48
    assert page.evaluate("document.activeElement.id") == "still-here-yes"
    page.clock.run_for(5_000)
    # Counting down: five seconds on, give or take the tick that landed last (CI read 14 after 20).
    assert int(page.inner_text("#still-here-seconds")) in (shown - 5, shown - 6)
    yes.click()
    assert not dialog.is_visible()
    assert page.url == f"{live_server}/badges/home"

    # Left alone again: asked, no answer, signed out; the scanner is back for the next child.
    page.clock.run_for(121_000)
    assert _still_here(page).is_visible()
    with page.expect_navigation(url=f"{live_server}/badge?school=maple"):
        page.clock.run_for(21_000)
    assert page.locator("#scanner").count() == 1
    assert not page.get_by_text("Ada").count()
    assert not problems
    # The session is over on the server too.
    assert requests.get(f"{live_server}/badges/home", cookies=http.cookies, timeout=10,
                        allow_redirects=False).headers["Location"].startswith("/badge?school=maple")


def test_a_kiosk_tiles_page_left_alone_signs_out_to_a_page_naming_no_one(
        app, redis_client, world, live_server, kiosk_page):
    page, problems = kiosk_page
    page.clock.install()
    kiosk_signed_in(page, live_server, redis_client, world)
    page.clock.run_for(121_000)
    assert _still_here(page).is_visible()
    page.keyboard.press("Escape")        # closing the question is an answer too
    assert not _still_here(page).is_visible()
    page.clock.run_for(30_000)           # past the question's 20 seconds: not signed out
    page.wait_for_timeout(1000)          # (a sign-out's navigation takes real time)
    assert page.url == f"{live_server}/badges/home"
    assert page.get_by_role("heading", name="Hi, Ada!").is_visible()
    page.clock.run_for(91_000)           # two minutes since the answer: asked again
    assert _still_here(page).is_visible()
    left_for_no_one(page, live_server, problems, lambda: page.clock.run_for(21_000))


def test_the_district_sets_how_long_the_tiles_wait_before_asking(app, redis_client, world, live_server,
                                                                  kiosk_page):
    # PORTAL_KIOSK_PAGE_IDLE_SECONDS: a district whose youngest read slowly asks later, or sooner.
    from dataclasses import replace
    app.config["SETTINGS"] = replace(app.config["SETTINGS"], kiosk_page_idle_seconds=45)
    page, problems = kiosk_page
    page.clock.install()
    kiosk_signed_in(page, live_server, redis_client, world)
    page.clock.run_for(40_000)
    assert not _still_here(page).is_visible()
    page.clock.run_for(6_000)
    assert _still_here(page).is_visible() and not problems
