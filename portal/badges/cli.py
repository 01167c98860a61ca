"""`portal badges ...` and `portal kiosk ...`: badge policy, voiding, unlocking, kiosk devices.

IDs are OneRoster sourcedIds, except DEVICE_ID (the number `portal kiosk list` shows). Commands
run with the operator's authority and exit non-zero with a one-line reason on bad input.
"""
from __future__ import annotations

from pathlib import Path

import click
import redis
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from portal.admin.services import printable_line as shown
from portal.badges import plural
from portal.cli import person_named
from portal.errors import PortalError
from portal.local_time import local
from portal.redis_store import REFUSED_PASSWORD, refused_password


# Every command here checks Redis before it writes to the database, so this is the whole story.
REDIS_DOWN = "Redis (the session store) cannot be reached; start it and try again. Nothing changed"


def redis_down(e: redis.RedisError) -> str:
    """The line for a Redis that failed before anything changed: away, or refusing the password."""
    if refused_password(e):
        return f"{REFUSED_PASSWORD}: set the password Redis expects there and try again. Nothing changed"
    return REDIS_DOWN


def _fail(message: str):
    raise click.ClickException(message)


def _school(sourced_id: str):
    from portal.db import db
    from portal.models import School
    school = db.session.scalar(select(School).where(School.sourced_id == sourced_id))
    if school is None:
        _fail(f"there is no school with id {sourced_id!r}")
    return school


def _section(sourced_id: str):
    from portal.db import db
    from portal.models import Section
    section = db.session.scalar(select(Section).where(Section.sourced_id == sourced_id))
    if section is None:
        _fail(f"there is no section with id {sourced_id!r}")
    return section


@click.group("badges")
def badges_cli():
    """QR badges: each school's policy, printed sheets, voiding, second-factor unlocks."""


@badges_cli.command("policy")
@click.argument("school_id")
@click.option("--grades", help="grades that may use badges, e.g. KG,01,02")
@click.option("--second-factor-grades", help="of those, grades that add a second factor ('' for none)")
@click.option("--factor", type=click.Choice(["pin", "picture"]), help="the second factor")
@click.option("--allow-browser-scanner/--no-allow-browser-scanner", default=None,
              help="let students scan their badge in any browser's camera page")
@click.option("--scanner-networks", help="networks the browser scanner works from, e.g. "
              "10.20.0.0/16,2001:db8::/48 ('' for any)")
@click.option("--expires", help="MM-DD (last day badges work each year) or <N>d ('' for the default)")
@with_appcontext
def badges_policy(school_id, grades, second_factor_grades, factor, allow_browser_scanner,
                  scanner_networks, expires):
    """Show or change SCHOOL_ID's badge policy (options not given keep their value)."""
    from portal.badges.policy import PolicyError, policy_for, set_policy
    from portal.db import db
    school = _school(school_id)
    if any(v is not None for v in (grades, second_factor_grades, factor, allow_browser_scanner,
                                   scanner_networks, expires)):
        try:
            set_policy(db.session, school, grades=grades, second_factor_grades=second_factor_grades,
                       factor=factor, allow_browser_scanner=allow_browser_scanner,
                       scanner_networks=scanner_networks, expires_on=expires)
        except PolicyError as e:
            _fail(str(e))
    click.echo(f"{shown(school.name)} ({school.sourced_id}): "
               f"{policy_for(db.session, school.id).describe(current_app.config['SETTINGS'].badge_expires)}")


@badges_cli.command("void")
@click.option("--student", "username", help="a student's username")
@click.option("--section", "section_id", help="every student of a section")
@click.option("--school", "school_id", help="every badge of a school")
@click.option("--reason", default="voided by an admin", show_default=True)
@with_appcontext
def badges_void(username, section_id, school_id, reason):
    """Void badges at once and end the sessions they started (--student: every one of the
    student's badges, at each of their schools; --section: the cards of its school)."""
    from portal.badges import services
    from portal.db import db
    if sum(bool(x) for x in (username, section_id, school_id)) != 1:
        _fail("say whose badges: exactly one of --student, --section or --school")
    client = current_app.extensions["redis"]
    try:
        if username:
            count = services.void_badges_for_person(db.session, client, person_named(username), reason=reason)
        elif section_id:
            count = services.void_badges_for_section(db.session, client, _section(section_id), reason=reason)
        else:
            count = services.void_badges_for_school(db.session, client, _school(school_id), reason=reason)
    except redis.RedisError as e:
        _fail(redis_down(e))
    except services.SessionsNotEnded as e:
        _fail(f"voided the badges of {plural(e.students, 'student', 'students')}, but Redis went away "
              "before their badge sessions ended: a session begun with one lasts until it times out")
    click.echo(f"voided the badges of {plural(count, 'student', 'students')}")


@badges_cli.command("unlock")
@click.argument("username")
@click.option("--reset", is_flag=True, help="also clear their PIN and pictures (they choose new ones)")
@with_appcontext
def badges_unlock(username, reset):
    """Let USERNAME try their PIN or pictures again after too many wrong tries."""
    from portal.badges.factors import reset_factor, unlock_factor
    from portal.badges.signin import BadgeLimits
    from portal.db import db
    limits = BadgeLimits.from_settings(current_app.extensions["redis"], current_app.config["SETTINGS"])
    student = person_named(username)
    try:
        # Their wrong tries are counted in Redis too, and cleared there first.
        (reset_factor if reset else unlock_factor)(db.session, limits.factor, student)
    except redis.RedisError as e:
        _fail(redis_down(e))
    click.echo(f"{student.username} can sign in with their badge again"
               + (" and will choose a new PIN or pictures" if reset else ""))


@badges_cli.command("sheet")
@click.argument("section_id")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="the PDF to write (readable by you only)")
@click.option("--paper", type=click.Choice(["letter", "a4"]), default="letter", show_default=True,
              help="the paper size; the labels are Avery 22806 (2 inch squares, 12 a page)")
@click.option("--replace-all", is_flag=True,
              help="a new card for every badge student of the class: the cards they have for "
                   "its school stop working at once, wherever they were printed")
@with_appcontext
def badges_sheet(section_id, out, paper, replace_all):
    """Print badges for SECTION_ID's students who use badges and have no card that works at
    its school, as a PDF of labels (as the class page's Print badges does).

    A card printed for another class of theirs (homeroom, art) keeps working and is not
    printed again; when every student has one, nothing is written. --replace-all reissues
    every student's card: the ones they have for the section's school stop working at once
    (a card another school gave them keeps working there).

    The PDF holds live badges: print it, then delete it.
    """
    from portal.badges.services import finish_issuing
    from portal.badges.sheets import (
        NothingToPrint, blank_names_message, blank_reasons, missing_font_packages,
        print_section_badges, write_private_file,
    )
    from portal.db import db
    section = _section(section_id)
    settings = current_app.config["SETTINGS"]
    client = current_app.extensions["redis"]
    made = []

    def make() -> bytes:
        # Not committed yet: the old cards keep working until the new sheet is safely written.
        made.append(print_section_badges(db.session, client, section, paper=paper,
                                         replace=replace_all,
                                         default_expires=settings.badge_expires,
                                         zone=settings.zone, commit=False))
        return made[0].pdf

    try:
        # The old cards' sessions end in Redis: it must be there before anything changes.
        client.ping()
        write_private_file(out, make)
        db.session.commit()
    except NothingToPrint:
        _fail(f"every student of {shown(section.title)} who uses a badge has a card that works at "
              f"{shown(section.school.name)}: nothing was printed, and nothing was written to {out} "
              "(--replace-all makes new cards for all of them and stops the ones they have)")
    except PortalError as e:
        _fail(f"{e.title}: {e.advice}" if e.advice else e.title)
    except OSError as e:
        _fail(f"cannot write {out}: {e.strerror or e}; nothing changed")
    except redis.RedisError as e:
        _fail(redis_down(e))
    finally:
        db.session.rollback()  # after a commit: nothing; else the new badges go
    sheet = made[0]
    try:
        finish_issuing(client, list(sheet.issued))
    except redis.RedisError:
        click.echo("warning: Redis went away: a session begun with an old card may last until "
                   "its idle time-out", err=True)
    wrote = (f"wrote {plural(sheet.badges, 'new badge', 'new badges')} "
             f"({plural(sheet.pages, 'page', 'pages')}, {paper}) for "
             f"{shown(section.title)} at {shown(section.school.name)} to {out}")
    if replace_all:
        click.echo(f"{wrote}, a new card for every student who uses a badge: "
                   f"{plural(sheet.stopped, 'working card', 'working cards')} stopped working")
    else:
        click.echo(f"{wrote}, for the students who had no card that works there; "
                   f"{plural(sheet.kept, 'student', 'students')} already had one"
                   + (" (it keeps working)" if sheet.kept else ""))
    if sheet.incomplete:
        # Installing fonts helps only where some are missing: every label font being there, a
        # name no font has (an emoji) is written by hand.
        missing = missing_font_packages()
        remedy = {"font": (f" Or install the label fonts missing here (apt-get install "
                           f"{' '.join(missing)}) and print again." if missing else ""),
                  "shaping": " Or install the portal's Python packages again (pip install . in its "
                             "folder installs uharfbuzz) and print again."}
        click.echo(f"note: {blank_names_message(sheet)}"
                   + "".join(remedy[why] for why in blank_reasons(sheet)), err=True)


@click.group("kiosk")
def kiosk_cli():
    """Classroom devices that scan badges."""


@kiosk_cli.command("pair")
@click.argument("school_id")
@click.option("--name", default="", help="what to call the device, e.g. 'Room 4 Chromebook'")
@with_appcontext
def kiosk_pair(school_id, name):
    """Print a single-use pairing code (10 minutes) for a new device of SCHOOL_ID."""
    from portal.badges.kiosks import PAIR_SECONDS, BadDeviceName, create_pairing_code
    from portal.db import db
    school = _school(school_id)
    try:
        pairing = create_pairing_code(db.session, current_app.extensions["redis"], school, name=name)
    except redis.RedisError as e:
        _fail(redis_down(e))
    except BadDeviceName as e:
        _fail(f"{e.reason}: give --name in plain words; no code was made")
    click.echo(pairing.code)
    click.echo(f"valid once, for {PAIR_SECONDS // 60} minutes, at {shown(school.name)}: "
               f"python -m kiosk enroll --portal {_portal_address()} --code {pairing.code}", err=True)


def _portal_address() -> str:
    """The kiosk's --portal, as the pairing page gives it, when the portal's public address is
    set (PORTAL_OIDC_ISSUER, required in production); else a stand-in for it."""
    from portal.addresses import portal_address
    issuer = current_app.config["SETTINGS"].oidc_issuer
    if not issuer:
        return "URL"
    with current_app.test_request_context(base_url=issuer):   # a path in it is the portal's prefix
        return portal_address()


@kiosk_cli.command("list")
@click.argument("school_id")
@with_appcontext
def kiosk_list(school_id):
    """List SCHOOL_ID's devices: id, name, enrolled, last seen, state."""
    from portal.badges.kiosks import list_devices
    from portal.db import db
    school = _school(school_id)
    found = list_devices(db.session, school)
    if not found:
        click.echo(f"{shown(school.name)} has no devices: pair one with `portal kiosk pair {school_id}`")
    for device in found:
        seen = f"{local(device.last_seen_at):%Y-%m-%d %H:%M %Z}" if device.last_seen_at else "never"
        state = "revoked" if device.revoked_at else "active"
        # A name stored before pairing refused control characters, or by a device, is printed
        # as one plain line: the terminal would obey them (and a tab would shift the columns).
        click.echo(f"{device.id}\t{shown(device.name)}\t{local(device.created_at):%Y-%m-%d}\t{seen}\t{state}")


@kiosk_cli.command("revoke")
@click.argument("device_id")
@with_appcontext
def kiosk_revoke(device_id):
    """Stop DEVICE_ID from signing anyone in, and end the session open on it."""
    from portal.badges.kiosks import DeviceSessionNotEnded, revoke_device
    from portal.db import db, parse_id
    from portal.models import KioskDevice
    number = parse_id(device_id)
    device = db.session.get(KioskDevice, number) if number is not None else None
    if device is None:
        _fail(f"there is no device {device_id!r} (see `portal kiosk list SCHOOL_ID`)")
    try:
        revoke_device(db.session, current_app.extensions["redis"], device)
    except redis.RedisError as e:
        _fail(redis_down(e))
    except DeviceSessionNotEnded:
        _fail(f"revoked {device.id} ({shown(device.name)}), but Redis went away before the session open on "
              f"it ended: run `portal kiosk revoke {device.id}` again once Redis is back")
    except PortalError as e:
        _fail(e.title or str(e))
    click.echo(f"revoked {device.id} ({shown(device.name)})")
