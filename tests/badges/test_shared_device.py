"""A shared classroom device after a child's badge sign-in: signing out, or the session running
out, leaves the device ready for the next child (the scanner, or a page that names no one), never
the last child's tiles or a password form a young child cannot read."""
from __future__ import annotations

import json
import re

from portal.badges import flow
from portal.badges.policy import set_policy
from portal.db import db
from tests.badges.conftest import (PASSWORD, csrf_from, issue, let_sessions_idle, new_client, past_claim,
                                  session_data, session_key)

SCANNER = "/badge?school=maple"


def _scan_in_browser(browser, token, path=SCANNER):
    html = browser.get(path).get_data(as_text=True)
    csrf = re.search(r'data-csrf="([^"]+)"', html).group(1)
    return browser.post("/badge/scan", json={"token": token}, headers={"X-CSRFToken": csrf})


def _scanner_browser(app, redis_client, world, **policy):
    set_policy(db.session, world.school, allow_browser_scanner=True, **policy)
    return new_client(app)


def _is_scanner(page) -> bool:
    html = page.get_data(as_text=True)
    return page.status_code == 200 and "badge-scanner.js" in html and 'type="password"' not in html


def test_signing_out_of_a_scanner_session_goes_back_to_the_scanner(app, redis_client, world):
    browser = _scanner_browser(app, redis_client, world)
    # The page was opened without ?school=: the badge's own school's scanner is where it goes.
    answer = _scan_in_browser(browser, issue(redis_client, world.student), path="/badge")
    assert answer.status_code == 200, answer.json
    assert session_data(redis_client, browser)[flow.SCANNER_SCHOOL] == "maple"
    ada_key = session_key(browser)
    out = browser.post("/logout", data={"csrf_token": csrf_from(browser, "/badges/home")})
    assert out.status_code == 302 and out.headers["Location"] == SCANNER
    assert _is_scanner(browser.get(out.headers["Location"]))
    assert not redis_client.exists(ada_key)        # ended on the server, not only the cookie gone
    # A teacher signs in with a password on the same browser: their sign-out is as before.
    signed_in = browser.post("/login", data={"username": "t.four", "password": PASSWORD,
                                             "csrf_token": csrf_from(browser, "/login")})
    assert signed_in.status_code == 302
    out = browser.post("/logout", data={"csrf_token": csrf_from(browser, "/")})
    assert out.headers["Location"] == "/login"


def test_home_and_tiles_bring_back_the_scanner_once_the_session_ran_out(app, redis_client, world):
    browser = _scanner_browser(app, redis_client, world)
    assert _scan_in_browser(browser, issue(redis_client, world.student)).status_code == 200
    csrf = csrf_from(browser, "/badges/home")
    # Ada closed the tab; her session runs out (the server's idle limit).
    let_sessions_idle(redis_client, app.config["SETTINGS"].kiosk_idle_minutes * 60 + 1)
    assert session_data(redis_client, browser) is None
    for path in ("/", "/badges/home"):
        page = browser.get(path)
        assert page.status_code == 302 and page.headers["Location"] == SCANNER, path
    # The tiles page's timer, late (the Chromebook slept past the server's limit), signs out with
    # the ended session's token: nothing to sign out, and the scanner is back.
    late = browser.post("/logout", data={"csrf_token": csrf})
    assert late.status_code == 302 and late.headers["Location"] == SCANNER
    # The sign-in page's badge link keeps the school too.
    assert f'href="{SCANNER}"' in browser.get("/login").get_data(as_text=True)
    # A browser that never signed a child in at the scanner is asked to sign in, as before.
    other = new_client(app)
    assert other.get("/").headers["Location"].startswith("/login")
    assert 'href="/badge"' in other.get("/login").get_data(as_text=True)


def test_tiles_of_a_badge_session_at_slash_are_the_badge_tiles(app, redis_client, world):
    browser = _scanner_browser(app, redis_client, world)
    assert _scan_in_browser(browser, issue(redis_client, world.student)).status_code == 200
    for path in ("/", "/badges/home"):
        html = browser.get(path).get_data(as_text=True)
        assert "Hi, Ada!" in html and "Not you? Sign out" in html
        assert "still-here.js" in html and "Are you still here?" in html


def test_a_kiosk_sign_out_goes_to_a_page_that_names_no_one(app, redis_client, world, kiosk):
    kiosk.sign_in(issue(redis_client, world.student))
    out = kiosk.browser.post("/logout", data={"csrf_token": csrf_from(kiosk.browser, "/badges/home")})
    assert out.status_code == 302 and out.headers["Location"] == "/badges/next"
    page = kiosk.browser.get(out.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Scan your badge" in html
    assert "Ada" not in html and 'type="password"' not in html


def test_a_second_factor_that_ran_out_at_the_scanner_offers_the_scanner(app, redis_client, world,
                                                                        kiosk, monkeypatch):
    browser = _scanner_browser(app, redis_client, world, second_factor_grades="01",
                               factor="picture")
    monkeypatch.setattr(flow, "PENDING_SECONDS", -1)   # already run out when next used
    assert _scan_in_browser(browser, issue(redis_client, world.student)).json == {
        "next": "/badges/check"}
    page = browser.get("/badges/check")
    html = page.get_data(as_text=True)
    assert page.status_code == 403 and "That sign-in has run out" in html
    button = re.search(r'<a class="button big-button" href="([^"]+)"[^>]*>(.*?)</a>', html, re.S)
    assert button and button.group(1) == SCANNER and "<svg" in button.group(2)
    assert "Scan my badge" in button.group(2) and "Back to my apps" not in html
    assert _is_scanner(browser.get(button.group(1)))
    # At a kiosk, the kiosk's camera is the way on: the page is as it was.
    assert kiosk.sign_in(issue(redis_client, world.classmate)).headers["Location"] == "/badges/check"
    html = kiosk.browser.get("/badges/check").get_data(as_text=True)
    assert "That sign-in has run out" in html and "Scan my badge" not in html


def test_the_locked_page_from_the_scanner_has_a_way_back_to_it(app, redis_client, world):
    from portal.badges.factors import factor_row, hash_factor, set_factor
    from portal.models import FactorKind
    browser = _scanner_browser(app, redis_client, world, second_factor_grades="01", factor="pin")
    assert set_factor(db.session, world.student, FactorKind.pin, hash_factor(FactorKind.pin, "4821"))
    factor_row(db.session, world.student).locked_at = flow.utcnow()   # too many wrong tries
    db.session.commit()
    answer = _scan_in_browser(browser, issue(redis_client, world.student))
    assert answer.json == {"next": "/badges/locked?school=maple"}
    html = browser.get(answer.json["next"]).get_data(as_text=True)
    assert "Your teacher needs to help you sign in" in html
    assert f'href="{SCANNER}"' in html and "Scan my badge" in html
    # Opened any other way (a kiosk's browser, a made-up school): no button, as before.
    for path in ("/badges/locked", "/badges/locked?school=nowhere"):
        assert "Scan my badge" not in browser.get(path).get_data(as_text=True)


def _tab_script(html: str) -> dict | None:
    """The this-tab.js script's data, if the page has it (in <head>, before the body)."""
    head = html.split("<body>", 1)[0]
    found = re.search(r'<script src="/static/js/this-tab.js" data-mark="([^"]+)" data-first="([01])"'
                      r' data-leave="([^"]+)" data-alive="([^"]+)"></script>', head)
    return dict(zip(("mark", "first", "leave", "alive"), found.groups())) if found else None


def test_the_first_tiles_page_after_a_badge_sign_in_claims_its_tab(app, redis_client, world, kiosk):
    browser = _scanner_browser(app, redis_client, world)
    assert _scan_in_browser(browser, issue(redis_client, world.student)).status_code == 200
    first = _tab_script(browser.get("/badges/home").get_data(as_text=True))
    assert first and first["first"] == "1" and len(first["mark"]) >= 16
    assert first["leave"] == "/badges/next" and first["alive"] == f"/badges/alive?mark={first['mark']}"
    # The claim is kept beside the session, as long as the session can last, and ends with it.
    claimed = redis_client.ttl(flow.TAB_CLAIMED + first["mark"])
    assert 0 < claimed <= session_data(redis_client, browser)["_max"]
    # Every later tiles page, at either address, checks its tab against the same mark.
    for path in ("/", "/badges/home"):
        later = _tab_script(browser.get(path).get_data(as_text=True))
        assert later == {**first, "first": "0"}, path
    # A new sign-in (the next scan) has a mark of its own, claimed again by its first page.
    assert _scan_in_browser(browser, issue(redis_client, world.classmate)).status_code == 200
    again = _tab_script(browser.get("/").get_data(as_text=True))
    assert again["first"] == "1" and again["mark"] != first["mark"]
    # A kiosk's sign-in too (its hand-off opens the first page).
    kiosk.sign_in(issue(redis_client, world.student))
    assert _tab_script(kiosk.browser.get("/badges/home").get_data(as_text=True))["first"] == "1"
    # A password sign-in's tiles are not a shared device's: no check.
    teacher = new_client(app)
    teacher.post("/login", data={"username": "t.four", "password": PASSWORD,
                                 "csrf_token": csrf_from(teacher, "/login")})
    assert _tab_script(teacher.get("/").get_data(as_text=True)) is None


def test_a_badge_session_from_before_the_marks_is_not_checked(app, redis_client, world):
    browser = _scanner_browser(app, redis_client, world)
    assert _scan_in_browser(browser, issue(redis_client, world.student)).status_code == 200
    with browser.session_transaction() as data:
        del data[flow.TAB_MARK]
    html = browser.get("/badges/home").get_data(as_text=True)
    assert "Hi, Ada!" in html and _tab_script(html) is None


def test_the_page_that_names_no_one_never_names_the_signed_in_child(app, redis_client, world):
    browser = _scanner_browser(app, redis_client, world)
    # The last child's older tab comes here while a newer tab is still signing them out.
    assert _scan_in_browser(browser, issue(redis_client, world.student)).status_code == 200
    html = browser.get("/badges/next").get_data(as_text=True)
    assert "Scan your badge" in html and "Ada" not in html and "Lovelace" not in html
    # On a browser that signs children in at the scanner, the big button goes back to it.
    assert f'href="{SCANNER}"' in html and "Scan my badge" in html
    assert _is_scanner(browser.get(SCANNER))
    # A browser that never used the scanner (a kiosk's) is told to use the camera, as before.
    assert "Scan my badge" not in new_client(app).get("/badges/next").get_data(as_text=True)


def _alive(browser, mark: str):
    answer = browser.get(f"/badges/alive?mark={mark}")
    assert answer.headers["Cache-Control"] == "no-store"
    return answer.status_code, answer.json


def test_a_tiles_page_can_ask_whether_its_sign_in_is_still_on(app, redis_client, world, kiosk):
    kiosk.sign_in(issue(redis_client, world.student))
    mark = _tab_script(kiosk.browser.get("/badges/home").get_data(as_text=True))["mark"]
    key = session_key(kiosk.browser)
    assert _alive(kiosk.browser, mark) == (200, {"here": True})
    # Asking does not keep the sign-in on: the session's idle time-out is not slid.
    redis_client.expire(key, 30)
    assert _alive(kiosk.browser, mark) == (200, {"here": True})
    assert redis_client.ttl(key) <= 30
    # Another sign-in's mark, none, or a browser without the session: not this one.
    for other in ("x" * 16, ""):
        assert _alive(kiosk.browser, other) == (200, {"here": False})
    assert _alive(new_client(app), mark) == (200, {"here": False})
    # The next child's card is refused: the scan ends Ada's session, and her page hears so.
    from portal.badges.token import mint_token
    assert kiosk.scan(mint_token()).status_code == 403
    assert _alive(kiosk.browser, mark) == (200, {"here": False})
    # A new sign-in in the same browser has a new mark: the old page's is over.
    kiosk.sign_in(issue(redis_client, world.classmate))
    assert _alive(kiosk.browser, mark) == (200, {"here": False})
    # The server's idle limit ends it too.
    new_mark = _tab_script(kiosk.browser.get("/badges/home").get_data(as_text=True))["mark"]
    assert _alive(kiosk.browser, new_mark) == (200, {"here": True})
    let_sessions_idle(redis_client, app.config["SETTINGS"].kiosk_idle_minutes * 60 + 1)
    assert _alive(kiosk.browser, new_mark) == (200, {"here": False})


def test_a_password_session_is_not_a_badge_sign_in_that_is_on(app, redis_client, world):
    teacher = new_client(app)
    teacher.post("/login", data={"username": "t.four", "password": PASSWORD,
                                 "csrf_token": csrf_from(teacher, "/login")})
    # Even holding a mark (none is ever given to one): it is not a badge's sign-in.
    with teacher.session_transaction() as data:
        data[flow.TAB_MARK] = "anything-at-all-here"
    assert _alive(teacher, "anything-at-all-here") == (200, {"here": False})


def test_a_sign_in_on_its_way_to_an_app_claims_its_tab_on_the_way(app, redis_client, world, kiosk):
    # An app sent the kiosk's browser to sign in; the child scans; the browser goes on to the
    # app by way of the page that claims the tab. Found by review: the tiles opened later, in any
    # tab (the next child's too), were the first tiles page and claimed the tab for themselves.
    kiosk.browser.get("/login?next=/saml/resume")
    claim = kiosk.sign_in(issue(redis_client, world.student)).headers["Location"]
    assert past_claim(kiosk.browser, claim) == "/saml/resume"
    assert _tab_script(kiosk.browser.get("/").get_data(as_text=True))["first"] == "0"
    # The claiming page again (a reload, another tab): it claims nothing either, and names no one.
    html = kiosk.browser.get(claim).get_data(as_text=True)
    assert 'data-first="0"' in html and "Ada" not in html and 'id="signout"' in html
    # It goes on only within the portal; without a badge session it just goes on.
    html = kiosk.browser.get("/badges/claim?next=https://evil.example/").get_data(as_text=True)
    assert 'data-next="/badges/home"' in html
    teacher = new_client(app)
    teacher.post("/login", data={"username": "t.four", "password": PASSWORD,
                                 "csrf_token": csrf_from(teacher, "/login")})
    assert teacher.get(claim).headers["Location"] == "/saml/resume"


def test_a_page_that_never_reached_the_tab_claims_nothing(app, redis_client, world, kiosk):
    kiosk.sign_in(issue(redis_client, world.student))
    assert kiosk.browser.head("/badges/home").status_code == 200
    assert _tab_script(kiosk.browser.get("/badges/home").get_data(as_text=True))["first"] == "1"


def test_a_session_past_its_longest_life_is_not_on(app, redis_client, world, kiosk):
    kiosk.sign_in(issue(redis_client, world.student))
    mark = _tab_script(kiosk.browser.get("/badges/home").get_data(as_text=True))["mark"]
    assert _alive(kiosk.browser, mark) == (200, {"here": True})
    key = session_key(kiosk.browser)
    data = json.loads(redis_client.get(key))
    data["_created"] -= data["_max"] + 1
    redis_client.set(key, json.dumps(data), keepttl=True)
    assert _alive(kiosk.browser, mark) == (200, {"here": False})


def _launches(app_row) -> int:
    from sqlalchemy import func, select
    from portal.models import Event
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Event).where(
        Event.kind == "launch", Event.app_id == app_row.id))


def test_a_badge_sessions_app_opens_only_from_a_portal_page(app, redis_client, world, kiosk):
    # The last child's app reopened from the address bar's history, in a new tab, by the next
    # child: the browser says no page started it (Sec-Fetch-Site: none). The tiles come instead,
    # whose tab check signs out in a tab that is not the child's.
    from portal.admin.services import add_link_app, grant_app
    story = add_link_app(db.session, "Story Time", "https://story.example/")
    grant_app(db.session, "Story Time", school="maple")
    kiosk.sign_in(issue(redis_client, world.student))
    for where in ("none", "cross-site", "same-site"):
        answer = kiosk.browser.get(f"/launch/{story.slug}", headers={"Sec-Fetch-Site": where})
        assert answer.status_code == 302 and answer.headers["Location"] == "/", where
    assert _launches(story) == 0
    # A tile pressed on the portal's page, or a browser that does not say: launched.
    for headers in ({"Sec-Fetch-Site": "same-origin"}, {}):
        answer = kiosk.browser.get(f"/launch/{story.slug}", headers=headers)
        assert answer.headers["Location"] == "https://story.example/"
    assert _launches(story) == 2
    # A password session is not a shared device's: opened as before, from anywhere.
    teacher = new_client(app)
    grant_app(db.session, "Story Time", school="maple", role="teacher")
    teacher.post("/login", data={"username": "t.four", "password": PASSWORD,
                                 "csrf_token": csrf_from(teacher, "/login")})
    answer = teacher.get(f"/launch/{story.slug}", headers={"Sec-Fetch-Site": "none"})
    assert answer.headers["Location"] == "https://story.example/"


def _checks(html: str) -> list[str]:
    """The this-tab.js scripts in the page's <head>: their data-first values."""
    head = html.split("<body>", 1)[0]
    return re.findall(r'<script src="/static/js/this-tab.js" data-mark="[^"]+" data-first="([01])"', head)


def test_every_page_of_a_badge_sign_in_checks_its_tab(app, redis_client, world, kiosk):
    # Found by review: a 404 typed in the next child's new tab showed the last child's name in the
    # bar. Every page of a badge sign-in now checks the tab first, the tiles once.
    kiosk.sign_in(issue(redis_client, world.student))
    tiles = kiosk.browser.get("/badges/home").get_data(as_text=True)
    assert _checks(tiles) == ["1"]
    mark = _tab_script(tiles)["mark"]
    page = kiosk.browser.get("/no-such-page")
    html = page.get_data(as_text=True)
    assert page.status_code == 404 and _checks(html) == ["0"] and f'data-mark="{mark}"' in html
    assert _checks(kiosk.browser.get("/").get_data(as_text=True)) == ["0"]
    # Not the page that names no one: an older tab goes there while the newer one signs in.
    assert _checks(kiosk.browser.get("/badges/next").get_data(as_text=True)) == []
    # Not a password session's pages.
    teacher = new_client(app)
    teacher.post("/login", data={"username": "t.four", "password": PASSWORD,
                                 "csrf_token": csrf_from(teacher, "/login")})
    assert _checks(teacher.get("/no-such-page").get_data(as_text=True)) == []


def test_the_tiles_page_is_given_the_districts_wait(app, redis_client, world, kiosk):
    from dataclasses import replace
    kiosk.sign_in(issue(redis_client, world.student))
    assert 'still-here.js" data-idle-seconds="120"' in kiosk.browser.get("/").get_data(as_text=True)
    app.config["SETTINGS"] = replace(app.config["SETTINGS"], kiosk_page_idle_seconds=300)
    assert 'still-here.js" data-idle-seconds="300"' in kiosk.browser.get("/").get_data(as_text=True)
