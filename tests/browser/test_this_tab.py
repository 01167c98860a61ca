"""On a shared classroom device, a badge sign-in's tiles show only in the tab the child signed in
to, in a real Chromium: a reload, Back, or coming back from an app keep them there; a new tab that
opens the portal (the next child, after the last one closed their tab) shows no one's name or
tiles, signs out, and brings the scanner, or a kiosk's page that names no one."""
from __future__ import annotations

import pytest
import requests

from portal.badges.policy import set_policy
from portal.db import db
from tests.badges import conftest as badge_school
from tests.badges.conftest import issue
from tests.badges import test_browser as kiosk_tests
from tests.browser.test_still_here import _scanner_session, kiosk_signed_in, left_for_no_one

pytestmark = pytest.mark.browser

world = badge_school.world
kiosk_page = kiosk_tests.kiosk_page
SCANNER = "/badge?school=maple"


def _tiles_shown(page) -> bool:
    return page.get_by_role("heading", name="Hi, Ada!").is_visible()


def test_only_the_tab_the_child_signed_in_to_shows_their_tiles(app, redis_client, world, live_server,
                                                                kiosk_page, link_site):
    set_policy(db.session, world.school, allow_browser_scanner=True)
    db.session.commit()
    page, problems = kiosk_page
    http = _scanner_session(live_server, issue(redis_client, world.student))
    page.context.add_cookies([{"name": c.name, "value": c.value, "url": live_server}
                              for c in http.cookies])
    page.goto(f"{live_server}/badges/home")
    assert _tiles_shown(page)
    # The same tab keeps them: a reload, the portal's address again, and Back from an app.
    page.reload()
    assert _tiles_shown(page)
    page.goto(f"{live_server}/")
    assert _tiles_shown(page)
    page.goto(link_site)
    page.go_back()
    assert page.url == f"{live_server}/" and _tiles_shown(page)

    # Ada closed her tab; the next child opens the portal in a new one. While its sign-out is on
    # its way (held back here), the page shows nothing: no name, no tiles, to eyes or to a reader.
    held = page.context.new_page()
    held.add_init_script("HTMLFormElement.prototype.submit = function () { window.heldBack = true; };")
    held.goto(f"{live_server}/")
    assert held.evaluate("window.heldBack")        # it did try to sign out
    assert held.evaluate("document.documentElement.classList.contains('not-this-tab')")
    assert not _tiles_shown(held)
    assert not held.get_by_text("Ada").first.is_visible()
    # visibility: hidden, which hides the page from screen readers too (not only painted over).
    assert held.locator("body").evaluate("b => getComputedStyle(b).visibility") == "hidden"
    held.close()

    # Let through, the sign-out ends Ada's session and the scanner is back for the next child.
    other = page.context.new_page()
    with other.expect_navigation(url=f"{live_server}{SCANNER}"):
        other.goto(f"{live_server}/badges/home", wait_until="commit")
    assert other.locator("#scanner").count() == 1
    assert not other.get_by_text("Ada").count()
    gone = requests.get(f"{live_server}/badges/home", cookies=http.cookies, timeout=10,
                        allow_redirects=False)
    assert gone.headers["Location"].startswith(SCANNER)
    # Ada's own tab left her tiles when the new tab opened (static/js/one-child.js), for a page
    # that names no one, with the big button back to the scanner.
    page.wait_for_url(f"{live_server}/badges/next")
    assert not page.get_by_text("Ada").count()
    with page.expect_navigation(url=f"{live_server}{SCANNER}"):
        page.get_by_role("link", name="Scan my badge").click()
    assert not problems


def test_a_new_tab_on_a_kiosk_goes_to_the_page_that_names_no_one(app, redis_client, world,
                                                                 live_server, kiosk_page):
    page, problems = kiosk_page
    kiosk = kiosk_signed_in(page, live_server, redis_client, world)
    assert _tiles_shown(page)
    other = page.context.new_page()
    left_for_no_one(other, live_server, problems,
                    lambda: other.goto(f"{live_server}/", wait_until="commit"))
    # The next scan's hand-off, in yet another tab as the kiosk opens it, shows the next tiles.
    third = page.context.new_page()
    third.goto(kiosk.scan(issue(redis_client, world.student)))
    third.wait_for_url(f"{live_server}/badges/home")
    assert _tiles_shown(third)
    assert not problems


def test_the_tiles_leave_once_a_refused_scan_ended_the_sign_in(app, redis_client, world, live_server,
                                                               kiosk_page):
    # Ada walked off; the next child's card does not work. The scan signs Ada out, and her tiles,
    # with her name, leave the screen within seconds, with no one touching it.
    from portal.badges.token import mint_token
    page, problems = kiosk_page
    page.clock.install()
    kiosk = kiosk_signed_in(page, live_server, redis_client, world)
    page.clock.run_for(25_000)             # asked twice meanwhile: still on, the page stays
    page.wait_for_timeout(300)
    assert page.url == f"{live_server}/badges/home" and _tiles_shown(page)
    refused = requests.post(f"{live_server}/kiosk/badge", json={"token": mint_token()},
                            headers=kiosk.headers, timeout=10)
    assert refused.status_code == 403
    left_for_no_one(page, live_server, problems, lambda: page.clock.run_for(10_000))


def test_a_sign_in_on_its_way_elsewhere_claims_its_tab_first(app, redis_client, world, live_server,
                                                              kiosk_page):
    # The kiosk's browser was asked to sign in on its way somewhere (an app, here the tiles'
    # address); the scan goes on there by way of the page that claims the tab.
    page, problems = kiosk_page
    kiosk = kiosk_signed_in(page, live_server, redis_client, world)
    with page.expect_navigation(url=f"{live_server}/badges/next"):
        page.get_by_role("button", name="Not you? Sign out").click()
    page.goto(f"{live_server}/login?next=/")
    assert page.get_by_role("heading", name="Sign in").first.is_visible()
    page.goto(kiosk.scan(issue(redis_client, world.classmate)))
    page.wait_for_url(f"{live_server}/")
    assert page.get_by_role("heading", name="Hi, Alan!").is_visible()
    other = page.context.new_page()
    with other.expect_navigation(url=f"{live_server}/badges/next"):
        other.goto(f"{live_server}/", wait_until="commit")
    assert not other.get_by_text("Alan").count() and not problems


def test_the_last_childs_app_from_the_address_bar_brings_the_tiles_not_the_app(
        app, redis_client, world, live_server, kiosk_page, link_site):
    from portal.admin.services import add_link_app, grant_app
    story = add_link_app(db.session, "Story Time", link_site)
    grant_app(db.session, "Story Time", school="maple")
    page, problems = kiosk_page
    kiosk_signed_in(page, live_server, redis_client, world)
    # Typed (or from history) in Ada's own tab: her tiles, where she presses the tile.
    page.goto(f"{live_server}/launch/{story.slug}")
    assert page.url == f"{live_server}/" and _tiles_shown(page)
    with page.expect_navigation(url=f"{link_site.rstrip('/')}/**"):
        page.get_by_role("link", name="Story Time").click()
    # The next child reopens it in a new tab: no app, no tiles, and Ada is signed out.
    other = page.context.new_page()
    with other.expect_navigation(url=f"{live_server}/badges/next"):
        other.goto(f"{live_server}/launch/{story.slug}", wait_until="commit")
    assert not other.get_by_text("Ada").count() and not problems


def test_a_sign_in_asked_for_on_the_way_to_an_app_opens_it(app, redis_client, world, live_server,
                                                            kiosk_page, link_site):
    # The browser was on its way to the app when it was asked to sign in: after the scan, the
    # page that claims the tab goes on, and the portal sees a page of its own open the app.
    from portal.admin.services import add_link_app, grant_app
    story = add_link_app(db.session, "Story Time", link_site)
    grant_app(db.session, "Story Time", school="maple")
    page, problems = kiosk_page
    kiosk = kiosk_signed_in(page, live_server, redis_client, world)
    with page.expect_navigation(url=f"{live_server}/badges/next"):
        page.get_by_role("button", name="Not you? Sign out").click()
    page.goto(f"{live_server}/launch/{story.slug}")      # signed out: asked to sign in
    assert "/login" in page.url
    with page.expect_navigation(url=f"{link_site.rstrip('/')}/**"):
        page.goto(kiosk.scan(issue(redis_client, world.classmate)), wait_until="commit")
    assert page.get_by_role("heading", name="Welcome to Story Time").is_visible() and not problems


def test_any_page_of_the_sign_in_in_a_new_tab_signs_out(app, redis_client, world, live_server,
                                                        kiosk_page):
    page, problems = kiosk_page
    kiosk_signed_in(page, live_server, redis_client, world)
    page.goto(f"{live_server}/no-such-page")          # Ada's own tab: the page, her name in the bar
    assert page.get_by_text("Ada").first.is_visible()
    page.go_back()
    other = page.context.new_page()
    with other.expect_navigation(url=f"{live_server}/badges/next"):
        other.goto(f"{live_server}/no-such-page", wait_until="commit")
    assert not other.get_by_text("Ada").count() and not problems
