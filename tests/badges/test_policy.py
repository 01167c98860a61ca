"""Each school's badge policy, the `portal badges` commands, and the browser scanner endpoint."""
from __future__ import annotations

import pytest

from portal.badges.policy import PolicyError, policy_for, set_policy
from portal.db import db
from portal.models import FactorKind
from tests.badges.conftest import csrf_from, issue, login, new_client, session_data


def test_default_policy_badges_for_prek_to_5_and_pin_from_grade_3(world):
    policy = policy_for(db.session, world.school.id)
    assert policy.allows(world.student) and policy.factor_for(world.student) is None
    assert policy.allows(world.older_student)
    assert policy.factor_for(world.older_student) is FactorKind.pin
    assert not policy.allows(world.teacher)
    assert not policy.allow_browser_scanner


def test_policy_cli_sets_grades_factor_and_scanner(runner, world):
    result = runner.invoke(args=["badges", "policy", "maple", "--grades", "KG,01,02",
                                 "--second-factor-grades", "02", "--factor", "picture",
                                 "--allow-browser-scanner"])
    assert result.exit_code == 0, result.output
    assert "badges for KG, 01, 02; second factor (picture) for 02; browser scanner allowed" in result.output
    policy = policy_for(db.session, world.school.id)
    assert policy.grades == {"KG", "01", "02"} and policy.second_factor_grades == {"02"}
    assert policy.factor is FactorKind.picture and policy.allow_browser_scanner
    result = runner.invoke(args=["badges", "policy", "maple", "--no-allow-browser-scanner"])
    assert "browser scanner off" in result.output and "(picture) for 02" in result.output
    assert "badges expire 07-31 (the district's, PORTAL_BADGE_EXPIRES)" in result.output
    assert policy_for(db.session, world.other_school.id).grades != {"KG", "01", "02"}


@pytest.mark.parametrize("args, reason", [
    (["--grades", "KG,banana"], "not a OneRoster grade"),
    (["--grades", "KG", "--second-factor-grades", "03"], "must also be badge grades"),
    (["--expires", "13-45"], "not a day of the year"),
])
def test_policy_cli_refuses_bad_settings_in_one_line(runner, world, args, reason):
    result = runner.invoke(args=["badges", "policy", "maple", *args])
    assert result.exit_code != 0
    assert reason in result.output and len(result.output.strip().splitlines()) == 1


def test_policy_cli_refuses_unknown_school(runner, world):
    result = runner.invoke(args=["badges", "policy", "nowhere"])
    assert result.exit_code != 0 and "no school" in result.output


def test_grades_are_read_as_oneroster_codes(world):
    policy = set_policy(db.session, world.school, grades="kg, 1, 2", second_factor_grades="2")
    assert policy.grades == {"KG", "01", "02"} and policy.second_factor_grades == {"02"}
    with pytest.raises(PolicyError):
        set_policy(db.session, world.school, factor="fingerprint")
    for written in ("\u00b2", "9" * 5000, "003"):   # int() of the first two raised ValueError
        with pytest.raises(PolicyError, match="is not a OneRoster grade"):
            set_policy(db.session, world.school, grades=written)


def test_badges_void_cli(runner, redis_client, world, kiosk):
    token = issue(redis_client, world.student)
    result = runner.invoke(args=["badges", "void", "--section", "room4"])
    assert result.exit_code == 0 and "1 student" in result.output
    assert kiosk.scan(token).status_code == 403
    assert runner.invoke(args=["badges", "void"]).exit_code != 0


def _scan_in_browser(browser, token, csrf):
    return browser.post("/badge/scan", json={"token": token}, headers={"X-CSRFToken": csrf})


def _fresh_csrf(app, browser):
    # Any page with a form gives the browser a session and a CSRF token (the scanner page will).
    return csrf_from(browser, "/login")


def test_browser_scanner_only_where_the_school_allows_it(app, redis_client, world):
    token = issue(redis_client, world.student)
    browser = new_client(app)
    csrf = _fresh_csrf(app, browser)
    refused = _scan_in_browser(browser, token, csrf)
    assert refused.status_code == 403
    set_policy(db.session, world.school, allow_browser_scanner=True)
    answer = _scan_in_browser(browser, token, csrf)
    assert answer.status_code == 200 and answer.json == {"next": "/badges/home"}
    assert session_data(redis_client, browser)["auth_method"] == "badge"
    assert "Not you? Sign out" in browser.get("/badges/home").get_data(as_text=True)


def test_browser_scanner_refusals_match_and_need_csrf(app, redis_client, world):
    from portal.badges.token import mint_token
    set_policy(db.session, world.school, allow_browser_scanner=True)
    token = issue(redis_client, world.student)
    far = issue(redis_client, world.far_student)  # Oak does not allow the browser scanner
    browser = new_client(app)
    csrf = _fresh_csrf(app, browser)
    assert browser.post("/badge/scan", json={"token": token}).status_code == 400  # no CSRF
    answers = [_scan_in_browser(browser, t, csrf) for t in (mint_token(), far, "hello")]
    assert {a.status_code for a in answers} == {403}
    assert len({a.get_data() for a in answers}) == 1


def test_browser_scanner_leads_to_the_second_factor(app, redis_client, world):
    set_policy(db.session, world.school, allow_browser_scanner=True)
    browser = new_client(app)
    answer = _scan_in_browser(browser, issue(redis_client, world.older_student),
                              _fresh_csrf(app, browser))
    assert answer.json == {"next": "/badges/check"}
    assert browser.get("/badges/home").status_code == 302


def test_browser_scan_replaces_a_signed_in_session(app, redis_client, world):
    set_policy(db.session, world.school, allow_browser_scanner=True)
    browser = new_client(app)
    login(browser, "alan")
    csrf = csrf_from(browser, "/")
    assert _scan_in_browser(browser, issue(redis_client, world.student), csrf).status_code == 200
    assert "Hi, Ada!" in browser.get("/badges/home").get_data(as_text=True)
