"""A school that allows the in-browser scanner may limit it to its own networks: a badge (or a
photo of one) then signs nobody in from home, while the school's enrolled kiosk devices keep
working anywhere. Refusals look like every other refused badge; bad settings change nothing."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.badges.policy import PolicyError, parse_networks, policy_for, set_policy
from portal.db import db
from portal.models import Badge, Event
from tests.badges.conftest import csrf_from, issue, new_client, session_data
from tests.badges.test_teacher_pages import _form_post, _signed_in, _text

SCHOOL_NET = "10.20.0.0/16"
IN_SCHOOL, AT_HOME = "10.20.3.4", "203.0.113.9"


def _browser(app, address: str):
    browser = new_client(app)
    browser.environ_base["REMOTE_ADDR"] = address
    return browser


def _scan(browser, token):
    csrf = csrf_from(browser, "/login")
    return browser.post("/badge/scan", json={"token": token}, headers={"X-CSRFToken": csrf})


def _last_used(badge_token_owner):
    db.session.expire_all()
    return db.session.scalars(select(Badge.last_used_at).where(
        Badge.person_id == badge_token_owner.id)).one()


def test_networks_are_read_in_canonical_form():
    assert parse_networks("10.20.0.0/16, 192.0.2.7  2001:db8::/48,10.20.0.0/16") == (
        "10.20.0.0/16", "192.0.2.7/32", "2001:db8::/48")
    assert parse_networks("") == () and parse_networks(" , ") == () and parse_networks(None) == ()
    # IPv4 written as IPv4-mapped IPv6: stored as the IPv4 it means (addresses are compared so).
    assert parse_networks("::ffff:10.20.0.0/112 ::ffff:192.0.2.7") == ("10.20.0.0/16", "192.0.2.7/32")


@pytest.mark.parametrize("written, says", [
    ("10.20.3.4/16", "write the network (10.20.0.0/16) or the address alone"),
    ("school", "is not a network"),
    ("1.2.3.4/33", "is not a network"),
    ("010.1.1.1", "is not a network"),           # leading zeros: octal to some readers
    ("10.0.0.1\x00", "is not a network"),
    ("fe80::1%eth0", "is not a network"),
    ("x" * 5000, "too long"),
    (" ".join(f"10.{i}.0.0/16" for i in range(33)), "at most 32"),
])
def test_bad_networks_are_refused_in_plain_words_and_change_nothing(world, written, says):
    set_policy(db.session, world.school, allow_browser_scanner=True, scanner_networks=SCHOOL_NET)
    before = policy_for(db.session, world.school.id)
    with pytest.raises(PolicyError, match=says.replace("(", r"\(").replace(")", r"\)")):
        set_policy(db.session, world.school, scanner_networks=written)
    db.session.rollback()
    assert policy_for(db.session, world.school.id) == before


def test_browser_scanner_works_only_from_the_schools_networks(app, redis_client, world):
    set_policy(db.session, world.school, allow_browser_scanner=True,
               scanner_networks=f"{SCHOOL_NET} 2001:db8::/48")
    token = issue(redis_client, world.student)
    home = _browser(app, AT_HOME)
    refused = _scan(home, token)
    unknown = _scan(_browser(app, AT_HOME), "not a badge at all")
    # The same answer as any other refused badge: a finder learns nothing about the policy.
    assert refused.status_code == unknown.status_code == 403
    assert refused.get_data() == unknown.get_data()
    assert _last_used(world.student) is None and session_data(redis_client, home) is None
    for address in (IN_SCHOOL, f"::ffff:{IN_SCHOOL}", "2001:db8::42"):
        answer = _scan(_browser(app, address), token)
        assert answer.status_code == 200 and answer.json == {"next": "/badges/home"}, address
    assert _last_used(world.student) is not None


def test_clearing_the_networks_opens_the_scanner_to_any_network(app, redis_client, world):
    set_policy(db.session, world.school, allow_browser_scanner=True, scanner_networks=SCHOOL_NET)
    token = issue(redis_client, world.student)
    assert _scan(_browser(app, AT_HOME), token).status_code == 403
    set_policy(db.session, world.school, scanner_networks="")
    assert policy_for(db.session, world.school.id).scanner_networks == ()
    assert _scan(_browser(app, AT_HOME), token).status_code == 200


def test_kiosk_devices_work_from_any_network(app, redis_client, world, kiosk):
    set_policy(db.session, world.school, allow_browser_scanner=True, scanner_networks=SCHOOL_NET)
    kiosk.api.environ_base["REMOTE_ADDR"] = AT_HOME     # a field trip
    kiosk.browser.environ_base["REMOTE_ADDR"] = AT_HOME
    landed = kiosk.sign_in(issue(redis_client, world.student))
    assert landed.status_code == 302 and landed.headers["Location"].endswith("/badges/home")


def test_scanner_page_points_to_the_kiosk_outside_the_networks(app, world):
    set_policy(db.session, world.school, allow_browser_scanner=True, scanner_networks=SCHOOL_NET)
    for query in ("?school=maple", ""):
        outside = _browser(app, AT_HOME).get(f"/badge{query}").get_data(as_text=True)
        inside = _browser(app, IN_SCHOOL).get(f"/badge{query}").get_data(as_text=True)
        assert 'id="use-kiosk"' in outside and 'id="scanner"' not in outside, query
        assert 'id="scanner"' in inside, query


def test_the_second_step_is_taken_on_the_schools_network_too(app, redis_client, world):
    set_policy(db.session, world.school, allow_browser_scanner=True, scanner_networks=SCHOOL_NET)
    browser = _browser(app, IN_SCHOOL)
    answer = _scan(browser, issue(redis_client, world.older_student))   # grade 04: badge + PIN
    assert answer.json == {"next": "/badges/check"}
    assert browser.get("/badges/check").status_code == 200
    # The same browser session, carried off the school's network before the PIN.
    browser.environ_base["REMOTE_ADDR"] = AT_HOME
    page = browser.get("/badges/check")
    assert page.status_code == 403 and "That sign-in has run out" in page.get_data(as_text=True)


def test_policy_command_sets_shows_and_clears_networks(runner, world):
    result = runner.invoke(args=["badges", "policy", "maple", "--allow-browser-scanner",
                                 "--scanner-networks", "10.20.0.0/16, 192.0.2.7"])
    assert result.exit_code == 0, result.output
    assert "browser scanner allowed; scanner networks 10.20.0.0/16, 192.0.2.7/32;" in result.output
    result = runner.invoke(args=["badges", "policy", "maple", "--scanner-networks", "10.20.3.4/16"])
    assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1
    assert "write the network (10.20.0.0/16)" in result.output and "Traceback" not in result.output
    assert policy_for(db.session, world.school.id).scanner_networks == ("10.20.0.0/16", "192.0.2.7/32")
    result = runner.invoke(args=["badges", "policy", "maple", "--scanner-networks", ""])
    assert result.exit_code == 0 and "scanner networks" not in result.output
    # Allowed with no network named: the confirmation says where it works from.
    assert "browser scanner allowed from any network;" in result.output
    result = runner.invoke(args=["badges", "policy", "maple", "--no-allow-browser-scanner"])
    assert result.exit_code == 0 and "browser scanner off;" in result.output


def test_school_admin_sets_networks_on_the_page_and_the_audit_log_keeps_them(app, world):
    page = f"/teacher/?school={world.school.id}"
    principal = _signed_in(app, world.school_admin)
    path = f"/teacher/schools/{world.school.id}/badge-policy"
    fields = {"grades": ["KG", "01"], "factor": "pin", "browser_scanner": "yes"}
    answer = _form_post(principal, path, back=page, scanner_networks="10.20.0.0/16, 2001:db8::/48",
                        **fields)
    assert answer.status_code == 303
    assert 'value="10.20.0.0/16, 2001:db8::/48"' in principal.get(page).get_data(as_text=True)
    [event] = db.session.scalars(select(Event).where(Event.kind == "badge_policy_set"))
    assert "scanner networks 10.20.0.0/16, 2001:db8::/48" in event.data["policy"]
    db.session.expire_all()
    before = policy_for(db.session, world.school.id)
    refused = _form_post(principal, path, back=page, scanner_networks="the school wifi", **fields)
    text = _text(refused)
    assert refused.status_code == 400 and "is not a network" in text and "Nothing changed." in text
    db.session.expire_all()
    assert policy_for(db.session, world.school.id) == before
