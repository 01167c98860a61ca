"""Accessibility of the portal's pages in a real Chromium.

axe-core (vendored in tests/browser/vendor/, see its README) finds no problem it rates serious or
critical on any main page: the student ones (sign-in, badge scanner, pictures, PIN, locked, tiles,
hand-off, an app's sign-in and sign-out) and the staff ones (classes, a class, a new password,
pairing, the admin pages). And what axe cannot judge: a child picks their three pictures with the
keyboard alone (Tab in the grid's order, a focus ring that shows, Enter and Space), the picture
that has the focus names the progress and what went wrong, the student pages fit a 320 px
screen (200% zoom) with targets of at least 44 px for small fingers, and a keyboard skips the
bar to the page's main content."""
from __future__ import annotations

from pathlib import Path

import pytest

from portal.admin.services import release_fields
from portal.badges.factors import PICTURE_NAMES
from portal.badges.kiosks import create_pairing_code
from portal.badges.policy import set_policy
from portal.db import db
from tests.badges import conftest as badge_school
from tests.badges.conftest import PASSWORD, issue
from tests.badges.test_browser import KioskProgram
from tests.sso.conftest import register_and_grant
from tests.sso.test_oidc_support import REDIRECT, register_oidc_app

pytestmark = pytest.mark.browser

world = badge_school.world  # the badge tests' school, a fixture here too

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SERIOUS = ("serious", "critical")
SMALLEST_TARGET = 44  # CSS px, on the student pages

# axe over the whole page: each violation, with the first few elements it names.
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    where: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
}"""

# What a small finger must hit on a page, and whether the page scrolls sideways.
TARGETS = """() => {
  const small = [];
  for (const el of document.querySelectorAll("a[href], button, input:not([type=hidden]), select, summary")) {
    const box = el.getBoundingClientRect();
    if (!box.width && !box.height) continue;
    if (box.width < %d || box.height < %d || box.left < 0 || box.right > innerWidth)
      small.push(`${el.textContent.trim() || el.id}: ${Math.round(box.width)}x` +
                 `${Math.round(box.height)} at x=${Math.round(box.left)}`);
  }
  return {small, width: document.documentElement.scrollWidth};
}""" % (SMALLEST_TARGET, SMALLEST_TARGET)

# The focused element: its picture, its focus ring, and the text it is described by.
FOCUSED = """() => {
  const el = document.activeElement, style = getComputedStyle(el);
  const ids = (el.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
  return {picture: el.dataset.picture || null, outline: style.outlineStyle,
          ring: parseFloat(style.outlineWidth),
          description: ids.map(id => document.getElementById(id).textContent).join(" ")
                          .replace(/\\s+/g, " ")};
}"""


class Pages:
    """Browser contexts of the shared Chromium, and what was found wrong on each page checked."""

    def __init__(self, browser, base: str):
        self.browser, self.base = browser, base
        self.found: list[str] = []

    def context(self, **options):
        # Without the page's Content-Security-Policy, so that axe's script can be added: the
        # policy is the CSP tests' business, and changes nothing axe looks at.
        context = self.browser.new_context(bypass_csp=True, **options)
        context.set_default_timeout(10_000)
        # The SAML page posts itself to the app at once (an address that is nowhere here): keep it.
        context.add_init_script("HTMLFormElement.prototype.submit = function () {};")
        return context

    def signed_in(self, username: str, **options):
        page = self.context(**options).new_page()
        page.goto(self.base + "/login")
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        with page.expect_navigation():
            page.click("button.primary")
        return page

    def check(self, page, name: str) -> None:
        """Run axe on what `page` shows; keep its serious and critical violations under `name`."""
        page.wait_for_load_state()
        page.add_script_tag(path=str(AXE))
        for v in page.evaluate(RUN_AXE):
            if v["impact"] in SERIOUS:
                self.found.append(f"{name} ({page.url}): {v['id']} ({v['impact']}): {v['help']}; "
                                  f"at {', '.join(v['where'])}")

    def check_targets(self, page, name: str) -> None:
        """Keep what is too small a target on `page`, or wider than its window, under `name`."""
        page.wait_for_load_state()
        seen = page.evaluate(TARGETS)
        if seen["width"] > page.viewport_size["width"]:
            self.found.append(f"{name}: the page is {seen['width']} px wide, it scrolls sideways")
        self.found.extend(f"{name}: too small a target: {what}" for what in seen["small"])

    def assert_clean(self) -> None:
        assert not self.found, "found on the portal's pages:\n" + "\n".join(self.found)


@pytest.fixture
def pages(browser, live_server):
    return Pages(browser, live_server)


@pytest.fixture
def apps(world, runner, link_site):
    """Two link apps, a SAML app and an OpenID Connect app, on Maple Elementary's tiles."""
    for name in ("Story Time", "Math Garden"):
        assert runner.invoke(args=["apps", "add-link", name, f"{link_site}/story"]).exit_code == 0
        assert runner.invoke(args=["apps", "grant", name, "--school", "maple"]).exit_code == 0
    saml = register_and_grant(db.session, "Reading Garden", school=world.school)
    release_fields(db.session, saml.slug, ["given_name", "grade"])
    oidc, _ = register_oidc_app(db.session, "Number Lab", school=world.school)
    db.session.commit()
    return {"saml": saml, "oidc": oidc}


def sign_in_again_url(pages, apps) -> str:
    """An app's sign-in that asks the student to sign in again (prompt=login)."""
    return (pages.base + f"/oidc/authorize?client_id={apps['oidc'].client_id}&redirect_uri={REDIRECT}"
            "&response_type=code&scope=openid&prompt=login&code_challenge=" + "x" * 43
            + "&code_challenge_method=S256")


def pick(page, *names) -> None:
    for name in names:
        with page.expect_navigation():
            page.get_by_role("button", name=name.capitalize(), exact=True).click()


def test_sign_in_pages_have_no_serious_accessibility_problems(pages, world, apps):
    set_policy(db.session, world.school, allow_browser_scanner=True)
    db.session.commit()
    page = pages.context().new_page()
    page.goto(pages.base + "/login")
    pages.check(page, "sign-in")
    page.click("button.primary")
    pages.check(page, "sign-in, nothing typed")
    page.fill("#username", "ada")
    page.fill("#password", "not the password")
    page.click("button.primary")
    pages.check(page, "sign-in, wrong password")

    page.goto(pages.base + "/badge?school=maple")
    page.wait_for_function("document.getElementById('scanner').dataset.state !== 'starting'")
    pages.check(page, "badge scanner (no camera here)")
    # axe leaves the camera picture to a person: a screen reader names it.
    assert page.get_attribute("#scanner-video", "aria-label") == "What the camera sees"
    page.goto(pages.base + "/badge?school=oak")
    pages.check(page, "badge scanner, the school uses the kiosk")
    page.goto(pages.base + "/badges/locked?school=maple")   # from the scanner: a way back to it
    pages.check(page, "locked")
    page.goto(pages.base + "/no-such-page")
    pages.check(page, "not found (the error page)")
    page.goto(pages.base + "/oidc/logout")
    pages.check(page, "signed out by an app")
    page.goto(pages.base + f"/oidc/authorize?client_id={apps['oidc'].client_id}"
              "&redirect_uri=https://elsewhere.test/cb&response_type=code&scope=openid")
    pages.check(page, "an app's sign-in did not work")
    pages.assert_clean()


def test_badge_pages_have_no_serious_accessibility_problems(pages, world, apps, redis_client):
    set_policy(db.session, world.school, second_factor_grades="01 04", factor="picture")
    db.session.commit()
    kiosk = KioskProgram(pages.base, create_pairing_code(db.session, redis_client, world.school).code)
    page = pages.context(has_touch=True).new_page()
    page.goto(kiosk.bind_url())
    pages.check(page, "kiosk browser bound")

    page.goto(kiosk.scan(issue(redis_client, world.student)))
    pages.check(page, "pictures, choose")
    pick(page, "cat", "boat", "star")
    pages.check(page, "pictures, again")
    pick(page, "cat", "dog", "star")
    pages.check(page, "pictures, did not match")
    pick(page, "cat", "boat", "star", "cat", "boat", "star")
    page.wait_for_url(pages.base + "/badges/home")
    pages.check(page, "tiles after a badge")
    page.evaluate("document.getElementById('still-here').showModal()")
    pages.check(page, "tiles after a badge, are you still here?")
    page.keyboard.press("Escape")
    page.goto(sign_in_again_url(pages, apps))
    pages.check(page, "sign in again, after a badge")

    set_policy(db.session, world.school, factor="pin")
    db.session.commit()
    page.goto(kiosk.scan(issue(redis_client, world.older_student)))
    pages.check(page, "PIN, choose")
    page.fill("#pin", "12")
    page.click("button.primary")
    pages.check(page, "PIN, too short")

    elsewhere = pages.context().new_page()
    elsewhere.goto(kiosk.scan(issue(redis_client, world.classmate)))
    pages.check(elsewhere, "hand-off in a browser not set up")
    pages.assert_clean()


def test_student_pages_have_no_serious_accessibility_problems(pages, world, apps):
    page = pages.signed_in("ada")
    pages.check(page, "tiles")
    page.click(f"a.tile[data-app={apps['saml'].slug}]")
    pages.check(page, "opening a SAML app")
    page.goto(sign_in_again_url(pages, apps))
    pages.check(page, "sign in again")
    page.goto(pages.base + "/no-such-page")
    pages.check(page, "not found, signed in")
    page.goto(pages.base + "/oidc/logout")
    pages.check(page, "an app asks to sign out")
    page.click("button.primary")
    pages.check(page, "signed out by an app, after asking")
    pages.check(pages.signed_in("edsger"), "tiles, no apps yet")
    pages.assert_clean()


def test_staff_pages_have_no_serious_accessibility_problems(pages, world, apps, redis_client):
    issue(redis_client, world.student)
    KioskProgram(pages.base, create_pairing_code(db.session, redis_client, world.school).code)
    db.session.commit()
    teacher = pages.signed_in("t.four")
    teacher.goto(pages.base + "/teacher/")
    pages.check(teacher, "my classes")
    teacher.get_by_role("link", name="Room 4").click()
    pages.check(teacher, "a class")
    teacher.locator(f"#student-{world.student.id} summary").click()
    teacher.locator(f"#student-{world.student.id} details button").click()
    pages.check(teacher, "a student's new password")
    teacher.goto(pages.base + "/teacher/")
    teacher.get_by_role("button", name="Get a pairing code").click()
    pages.check(teacher, "pairing code")

    principal = pages.signed_in("principal")
    principal.goto(pages.base + "/teacher/")
    pages.check(principal, "a school's classes, badge policy and devices")

    student = pages.signed_in("katherine")
    student.click(f"a.tile[data-app={apps['saml'].slug}]")  # something to have shared
    admin = pages.signed_in("district")
    for path, name in (("/admin/", "apps and data"), (f"/admin/apps/{apps['saml'].slug}", "an app"),
                       ("/admin/people", "what was shared, nobody asked"),
                       ("/admin/people?username=katherine", "what was shared about a student"),
                       ("/admin/log", "audit log"), ("/admin/deletions", "deletion requests")):
        admin.goto(pages.base + path)
        pages.check(admin, name)
    admin.goto(pages.base + "/admin/people?username=katherine")
    admin.get_by_role("button", name="Ask Reading Garden to delete").click()
    pages.check(admin, "a deletion request")
    pages.assert_clean()


def test_a_keyboard_skips_the_bar_to_the_main_content(pages, world):
    """The first Tab on a page shows "Skip to main content", out of sight until then, over the
    bar; Enter on it takes the keyboard past the bar (My apps, My classes, Sign out) to the page."""
    page = pages.signed_in("t.four")
    page.goto(pages.base + f"/teacher/sections/{world.section.id}")
    skip = page.get_by_role("link", name="Skip to main content")
    before = skip.bounding_box()
    assert before["y"] + before["height"] <= 0, f"shown before it has the focus: {before}"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    assert page.evaluate(FOCUSED)["outline"] != "none"
    box = skip.bounding_box()
    assert box["y"] >= 0 and box["height"] >= SMALLEST_TARGET and box["width"] >= SMALLEST_TARGET, box
    middle = [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2]
    assert page.evaluate("([x, y]) => document.elementFromPoint(x, y).textContent", middle) == \
        "Skip to main content"  # over the bar, not under it
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")
    assert page.evaluate("document.activeElement.textContent") == "\u2190 My classes"


def test_a_child_picks_pictures_with_the_keyboard_alone(pages, world, redis_client):
    set_policy(db.session, world.school, second_factor_grades="01", factor="picture")
    db.session.commit()
    kiosk = KioskProgram(pages.base, create_pairing_code(db.session, redis_client, world.school).code)
    page = pages.context().new_page()
    page.goto(kiosk.bind_url())
    page.goto(kiosk.scan(issue(redis_client, world.student)))

    def focused() -> dict:
        now = page.evaluate(FOCUSED)
        assert now["outline"] != "none" and now["ring"] >= 2, f"no focus ring on {now}"
        return now

    # The page starts on the first picture; Tab goes through the grid in the order it shows.
    page.wait_for_function("document.activeElement && document.activeElement.dataset.picture")
    first = focused()
    assert "0 of 3 picked" in first["description"]
    order = [first["picture"]]
    for _ in PICTURE_NAMES[1:]:
        page.keyboard.press("Tab")
        order.append(focused()["picture"])
    assert order == list(PICTURE_NAMES)

    def press_on(name: str, key: str) -> dict:
        """Tab (or Shift+Tab) from the focused picture to `name`, and press `key` there."""
        here = PICTURE_NAMES.index(focused()["picture"])
        step = "Tab" if PICTURE_NAMES.index(name) > here else "Shift+Tab"
        for _ in range(abs(PICTURE_NAMES.index(name) - here)):
            page.keyboard.press(step)
        assert focused()["picture"] == name
        with page.expect_navigation():
            page.keyboard.press(key)
        if not page.url.endswith("/badges/check"):
            return {}
        page.wait_for_function("document.activeElement && document.activeElement.dataset.picture")
        return focused()

    # Enter picks; focus comes back to the picture just picked, which says how far along it is.
    after = press_on("cat", "Enter")
    assert after["picture"] == "cat" and "1 of 3 picked" in after["description"]
    dots = page.locator(".dot.picked").bounding_box()
    assert abs(dots["width"] - dots["height"]) < 1, f"the picked dot is not round: {dots}"
    after = press_on("boat", "Space")  # Space picks too
    assert after["picture"] == "boat" and "2 of 3 picked" in after["description"]
    press_on("star", "Enter")
    assert page.get_by_role("heading", name="Pick the same three pictures again").is_visible()

    # A wrong second round is said where the focus lands.
    for name in ("cat", "dog"):
        press_on(name, "Enter")
    after = press_on("star", "Space")
    assert "Those didn't match" in after["description"] and "0 of 3 picked" in after["description"]

    for name in ("cat", "boat", "star", "cat", "boat"):
        press_on(name, "Enter")
    press_on("star", "Enter")
    page.wait_for_url(pages.base + "/badges/home")
    assert page.get_by_role("heading", name="Hi, Ada!").is_visible()


def test_errors_are_named_by_the_field_that_has_the_focus(pages, world, redis_client):
    page = pages.context().new_page()
    page.goto(pages.base + "/login")
    page.fill("#username", "ada")
    page.fill("#password", "not the password")
    page.click("button.primary")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'username'")
    assert "don't match" in page.evaluate(FOCUSED)["description"]

    set_policy(db.session, world.school, second_factor_grades="01", factor="pin")
    db.session.commit()
    kiosk = KioskProgram(pages.base, create_pairing_code(db.session, redis_client, world.school).code)
    page.goto(kiosk.bind_url())
    page.goto(kiosk.scan(issue(redis_client, world.student)))
    page.wait_for_function("document.activeElement && document.activeElement.id === 'pin'")
    assert "Pick 4 to 6 numbers" in page.evaluate(FOCUSED)["description"]
    page.keyboard.type("12")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'pin'")
    problem = page.inner_text("#problem")
    assert problem and problem in page.evaluate(FOCUSED)["description"]


@pytest.mark.parametrize("viewport", [{"width": 320, "height": 640}])
def test_student_pages_fit_320px_with_targets_for_small_fingers(pages, world, apps, redis_client,
                                                               viewport):
    set_policy(db.session, world.school, second_factor_grades="01 04", factor="picture",
               allow_browser_scanner=True)
    set_policy(db.session, world.other_school, second_factor_grades="01", factor="pin")
    db.session.commit()
    page = pages.context(viewport=viewport, has_touch=True).new_page()
    for path, name in (("/login", "sign-in"), ("/badge?school=maple", "badge scanner"),
                       ("/badge?school=oak", "badge scanner, the school uses the kiosk"),
                       ("/badges/locked?school=maple", "locked"),
                       ("/no-such-page", "not found")):
        page.goto(pages.base + path)
        pages.check_targets(page, name)
    kiosk = KioskProgram(pages.base, create_pairing_code(db.session, redis_client, world.school).code)
    page.goto(kiosk.bind_url())
    page.goto(kiosk.scan(issue(redis_client, world.student)))
    pick(page, "flower")
    pages.check_targets(page, "pictures")
    oak = KioskProgram(pages.base, create_pairing_code(db.session, redis_client, world.other_school).code)
    page.goto(oak.bind_url())
    page.goto(oak.scan(issue(redis_client, world.far_student)))
    pages.check_targets(page, "PIN")

    student = pages.signed_in("katherine", viewport=viewport)
    pages.check_targets(student, "tiles")
    student.goto(sign_in_again_url(pages, apps))
    pages.check_targets(student, "sign in again")
    student.goto(pages.base + "/oidc/logout")
    pages.check_targets(student, "an app asks to sign out")
    pages.assert_clean()


def test_pages_follow_the_browsers_text_size(playwright, live_server, tmp_path):
    """A person who set a larger text size in the browser gets larger text on the portal's pages
    (page zoom is not the only way: a low-vision child's Chromebook may be set up for large text),
    and a small screen keeps the browser's size rather than a fixed one."""
    import json

    from tests.conftest import CHROMIUM, CHROMIUM_ARGS

    profile = tmp_path / "profile"
    (profile / "Default").mkdir(parents=True)
    (profile / "Default" / "Preferences").write_text(
        json.dumps({"webkit": {"webprefs": {"default_font_size": 24}}}))
    context = playwright.chromium.launch_persistent_context(
        profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, viewport={"width": 1024, "height": 768})
    try:
        page = context.new_page()
        page.goto(live_server + "/login")
        size = "() => getComputedStyle(document.documentElement).fontSize"
        assert page.evaluate(size) == "27px"            # 24 px asked for, and the portal's 112.5%
        page.set_viewport_size({"width": 360, "height": 640})
        assert page.evaluate(size) == "24px"
    finally:
        context.close()
