"""A student in a real browser: sign in through the form, see the tiles, open an app, sign out;
the tiles page at 320 px and from the keyboard."""
import re

import pytest

from tests.conftest import AuthActions  # noqa: F401  (same defaults as the other tests)

pytestmark = pytest.mark.browser

APPS = ["Story Time", "Math Garden", "Encyclopaedia Britannica Junior Edition",
        "Supercalifragilisticexpialidocious", "Typing Club", "Music Lab", "Paint"]


@pytest.fixture
def school_with_apps(roster, runner, link_site):
    school = roster.school("maple", "Maple Elementary")
    roster.person("ada.lovelace", schools=[school])
    for name in APPS:
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower())
        assert runner.invoke(args=["apps", "add-link", name, f"{link_site}/{slug}"]).exit_code == 0
        assert runner.invoke(args=["apps", "grant", name, "--school", "maple"]).exit_code == 0
    return school


def sign_in(page, live_server, username="ada.lovelace", password="correct horse battery"):
    page.goto(live_server + "/")
    assert "/login" in page.url
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button.primary")
    page.wait_for_url(live_server + "/")


def test_student_signs_in_opens_an_app_and_signs_out(page, live_server, link_site, school_with_apps):
    page.goto(live_server + "/")
    assert page.url.startswith(live_server + "/login")
    page.fill("#username", "ada.lovelace")
    page.fill("#password", "not the password")
    page.click("button.primary")
    assert "don't match" in page.inner_text("#problem")

    page.fill("#password", "correct horse battery")
    page.click("button.primary")
    page.wait_for_url(live_server + "/")
    assert page.inner_text("h1") == "Hi, Ada!"
    assert page.locator(".tile .name").all_inner_texts() == sorted(APPS)

    page.click("a.tile[data-app=story-time]")
    page.wait_for_url(link_site + "/story-time")
    assert page.inner_text("h1") == "Welcome to Story Time"

    page.goto(live_server + "/")
    page.click("form.signout button")
    page.wait_for_url(re.compile(re.escape(live_server) + "/login"))
    page.goto(live_server + "/")
    assert page.url.startswith(live_server + "/login")  # signed out for real


@pytest.mark.parametrize("viewport", [{"width": 320, "height": 640}])
def test_sign_in_page_fits_320px_and_shows_the_badge_way(page, live_server, school_with_apps):
    page.goto(live_server + "/login")
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    for selector in ("button.primary", "a.badge-link"):
        box = page.locator(selector).bounding_box()
        assert box["height"] >= 48 and box["x"] >= 0 and box["x"] + box["width"] <= 320, (selector, box)
    page.click("a.badge-link")
    page.wait_for_url(live_server + "/badge")
    assert page.locator("h1").count() == 1


@pytest.mark.parametrize("viewport", [{"width": 320, "height": 640}])
def test_tiles_fit_a_320px_screen_with_large_targets(page, live_server, school_with_apps):
    sign_in(page, live_server)
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 320, f"the page scrolls sideways ({scroll_width}px)"
    tiles = page.locator("a.tile")
    assert tiles.count() == len(APPS)
    for i in range(tiles.count()):
        box = tiles.nth(i).bounding_box()
        assert box["width"] >= 48 and box["height"] >= 48, box
        assert box["x"] >= 0 and box["x"] + box["width"] <= 320, box
    sign_out = page.locator("form.signout button").bounding_box()
    assert sign_out["height"] >= 48 and sign_out["x"] + sign_out["width"] <= 320


def test_keyboard_reaches_every_tile_and_enter_opens_it(page, live_server, link_site,
                                                        school_with_apps):
    # Sign in without the mouse too.
    page.goto(live_server + "/login")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'username'")
    page.keyboard.type("ada.lovelace")  # the username field has autofocus
    page.keyboard.press("Tab")
    page.keyboard.type("correct horse battery")
    page.keyboard.press("Enter")
    page.wait_for_url(live_server + "/")

    reached = []
    for _ in range(len(APPS) + 10):
        page.keyboard.press("Tab")
        slug = page.evaluate("document.activeElement.dataset.app || null")
        if slug and slug not in reached:
            reached.append(slug)
        if len(reached) == len(APPS):
            break
    assert len(reached) == len(APPS)
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"

    page.keyboard.press("Enter")
    page.wait_for_url(f"{link_site}/{reached[-1]}")
    assert page.inner_text("h1") == "Welcome to Story Time"
