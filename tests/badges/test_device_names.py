"""A device's name, and other stored text the `portal` commands print, reaches the admin's terminal
as one plain line: a name staff type at pairing is refused unless it is one line of plain text
(nothing changed); the name a device sends at enrollment is made one; and the commands print
names kept before (or a roster school name with a C1 control) with every control and
direction character as "?", so no escape sequence, carriage return or override is obeyed."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.db import db
from portal.models import App, AppKind, KioskDevice
from tests.admin.helpers import cli, refused
from tests.badges.conftest import login, new_client, staff_post
from tests.roster.conftest import bundles, roster_rows  # noqa: F401  (fixtures)

# An OSC that sets the terminal's title, a BEL, "erase the line", a carriage return that goes back
# over what was printed, and a right-to-left override.
HOSTILE = "Room 4\x1b]0;owned\x07\x1b[2K\rRoom 4 (revoked)\u202e"
SHOWN = "Room 4?]0;owned??[2K Room 4 (revoked)?"


def _obeyed(text: str) -> list[str]:
    """The characters a terminal would obey (or that turn text around) in `text`, but the line
    ends and the tabs between a listing's columns."""
    import unicodedata
    return [c for c in text if c not in "\n\t" and (unicodedata.category(c) == "Cc" or 0x202A <= ord(c) <= 0x202E
                                               or 0x2066 <= ord(c) <= 0x2069 or c in "\u200e\u200f\u061c")]


def _pairing_codes(redis_client) -> list:
    return list(redis_client.scan_iter("portal:kiosk:pair:*"))


@pytest.mark.parametrize("name", [HOSTILE, "Room\x1b[2J4", "Room 4\u202eevil", "Cart\x9b2J", "x" * 256])
def test_a_name_typed_at_pairing_that_is_not_plain_is_refused(app, redis_client, world, name):
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    answer = staff_post(teacher, csrf, "/kiosk/pair", school=world.school.id, name=name)
    assert answer.status_code == 400 and answer.json["error"] == "That device name can't be used"
    assert "no code was made" in answer.json["advice"]
    page = teacher.post("/kiosk/pair", data={"school": world.school.id, "name": name, "csrf_token": csrf})
    assert page.status_code == 400 and "That device name can&#39;t be used" in page.get_data(as_text=True)
    assert _pairing_codes(redis_client) == []


def test_a_name_typed_on_two_lines_is_one_line(app, redis_client, world):
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    answer = staff_post(teacher, csrf, "/kiosk/pair", school=world.school.id, name="  Room 4\r\n\tcart ")
    enrolled = new_client(app).post("/kiosk/enroll", json={"code": answer.json["code"]})
    assert enrolled.status_code == 201 and enrolled.json["name"] == "Room 4 cart"


def test_a_name_a_device_sends_is_made_one_plain_line(app, runner, redis_client, world):
    paired = runner.invoke(args=["kiosk", "pair", "maple"])                  # a code with no name
    code = paired.stdout.strip()
    enrolled = new_client(app).post("/kiosk/enroll", json={"code": code, "name": HOSTILE})
    assert enrolled.status_code == 201 and enrolled.json["name"] == SHOWN
    assert db.session.get(KioskDevice, enrolled.json["device_id"]).name == SHOWN
    listed = cli(runner, "kiosk", "list", "maple")
    assert f"{enrolled.json['device_id']}\t{SHOWN}\t" in listed and _obeyed(listed) == []


def test_the_command_line_refuses_a_name_that_is_not_plain(runner, redis_client, world):
    assert "no code was made" in refused(runner, "kiosk", "pair", "maple", "--name", "Room\x1b[2J4")
    assert _pairing_codes(redis_client) == []


def test_names_stored_before_are_printed_as_one_plain_line(app, runner, redis_client, world):
    # A database from before pairing refused them: the name is as it was typed.
    from datetime import datetime, timezone
    now = datetime.now(timezone.utc)
    device = KioskDevice(school_id=world.school.id, name=HOSTILE, secret_hash="0" * 64, created_at=now)
    db.session.add(device)
    db.session.commit()
    listed = cli(runner, "kiosk", "list", "maple")
    assert listed.count("\n") == 1 and listed.startswith(f"{device.id}\t{SHOWN}\t") and _obeyed(listed) == []
    revoked = cli(runner, "kiosk", "revoke", str(device.id))
    assert revoked == f"revoked {device.id} ({SHOWN})\n"


def test_an_app_name_kept_from_before_names_were_checked_is_printed_plainly(app, runner, redis_client, world):
    db.session.add(App(name="Math\x1b]0;owned\x07\rMath (removed)", slug="math", kind=AppKind.link,
                       url="https://math.example/"))
    db.session.commit()
    cli(runner, "apps", "grant", "math", "--school", "maple")
    listed = cli(runner, "apps", "list")
    assert listed.startswith("Math?]0;owned? Math (removed)\tlink\thttps://math.example/\tschool maple")
    assert _obeyed(listed) == []
    removed = cli(runner, "apps", "remove", "math", "--yes")
    restored = cli(runner, "apps", "restore", "math")
    assert _obeyed(removed + restored) == [] and "grant it again with `portal apps grant math ...`" in restored


def test_the_single_app_commands_print_an_old_name_plainly(app, runner, redis_client, world):
    # new-secret, set-oidc, logout-uri and set-saml printed the stored name as it was.
    cli(runner, "apps", "add-oidc", "Math", "--redirect-uri", "https://math.example/cb",
        "--login-uri", "https://math.example/login")
    cli(runner, "apps", "add-saml", "Reading", "--entity-id", "https://r.example/sp",
        "--acs-url", "https://r.example/acs")
    for found in db.session.scalars(select(App)):
        found.name += "\x1b]0;owned\x07\rOther"
    db.session.commit()
    said = [cli(runner, "apps", "new-secret", "math"),
            cli(runner, "apps", "set-oidc", "math", "--login-uri", "https://math.example/start"),
            cli(runner, "apps", "logout-uri", "math", "https://math.example/bye"),
            cli(runner, "apps", "logout-uri", "math"),
            cli(runner, "apps", "set-saml", "reading", "--acs-url", "https://r.example/acs2"),
            cli(runner, "apps", "set-saml", "reading", "--acs-url", "https://r.example/acs2")]
    assert _obeyed("".join(said)) == [], said
    assert "new client secret for Math?]0;owned? Other (math)" in said[0]
    assert said[-1].startswith("Reading?]0;owned? Other had these settings already")


def test_a_roster_school_name_with_a_c1_control_is_printed_plainly(app, runner, redis_client, bundles, roster_rows):
    # The import refuses C0 controls and direction overrides, not the C1 controls (U+0080-U+009F),
    # which some terminals obey: U+009B is "ESC [" in one character ("\x9b2J" clears the screen).
    roster_rows["orgs"][1]["name"] = "Maple\x9b2J Elementary"
    cli(runner, "roster", "import", bundles.write(roster_rows))
    for args in (("kiosk", "list", "s1"), ("badges", "policy", "s1"),
                 ("apps", "add-link", "Library", "https://l.example/"), ("apps", "grant", "Library", "--school", "s1"),
                 ("apps", "list")):
        out = cli(runner, *args)
        assert _obeyed(out) == [], (args, out)
    assert "Maple?2J Elementary has no devices" in cli(runner, "kiosk", "list", "s1")
    assert "school s1 (Maple?2J Elementary)" in cli(runner, "apps", "list")


def test_a_deletion_request_is_listed_plainly(app, runner, redis_client, world):
    from portal import audit
    db.session.add(App(name="Reading\x1b[2K\rReading", slug="reading", kind=AppKind.saml,
                       client_id="https://r.example/sp", settings={}))
    db.session.commit()
    reading = db.session.scalar(select(App).where(App.slug == "reading"))
    audit.record("launch", person=world.student, app=reading, data={"protocol": "saml", "fields": ["subject"]})
    asked = cli(runner, "deletions", "ask", "ada", "reading")
    listed = cli(runner, "deletions", "list")
    assert "\tReading?[2K Reading\t" in listed and _obeyed(asked + listed) == []
