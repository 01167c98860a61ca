"""The demo district: a made-up OneRoster bundle, imported through the real importer.

`portal demo` and `portal dev` use it. The bundle is written to a temporary folder and goes in by
import_roster like any district's (no side door), so the demo exercises the importer. Only the
three demo accounts below get passwords: argon2 is slow on purpose, and nobody else needs one.
"""
from __future__ import annotations

import tempfile
from datetime import tzinfo
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.badges.expiry import Clock, utcnow
from portal.roster.demo_bundle import (
    DISTRICT_NAME, DISTRICT_SID, Account, DemoSizes, write_demo_bundle,
)
from portal.roster.importer import Progress, import_roster
from portal.roster.summary import ImportSummary


class DemoAccount(NamedTuple):
    username: str
    password: str
    given_name: str
    family_name: str


# The demo sign-ins (README.md lists them). Never use these outside a demo.
DEMO_STUDENT = DemoAccount("demo.student", "sunny-otter-42", "Maya", "Rivera")
DEMO_TEACHER = DemoAccount("demo.teacher", "quiet-maple-17", "Daniel", "Okafor")
DEMO_ADMIN = DemoAccount("demo.admin", "brave-harbor-63", "Priya", "Shah")
DEMO_ACCOUNTS = (DEMO_STUDENT, DEMO_TEACHER, DEMO_ADMIN)
DEMO_SEED = 2025
# The most students a demo district may have: over twice the largest district in the country. A
# larger number (a typo, a stray digit) would fill the memory and the disk before it said anything.
MAX_DEMO_STUDENTS = 2_000_000

# Link apps and who gets them: (name, url, grants as keyword arguments of grant_app).
ELEMENTARY = "sch-e001"  # the first elementary school, the demo student's
DEMO_APPS = (
    ("Library", "https://openlibrary.org/", [{"district": True}]),
    ("Math Practice", "https://www.khanacademy.org/math",
     [{"grade": f"{g:02d}"} for g in range(1, 6)]),
    ("Typing Club", "https://www.typingclub.com/", [{"school": ELEMENTARY}]),
    ("Teacher Resources", "https://www.readwritethink.org/", [{"role": "teacher"}]),
)

__all__ = ["DEMO_ACCOUNTS", "DEMO_ADMIN", "DEMO_STUDENT", "DEMO_TEACHER", "DISTRICT_NAME",
           "DISTRICT_SID", "add_demo_badge", "load_demo", "renew_demo_badge", "write_bundle"]


def _account(demo: DemoAccount) -> Account:
    return Account(demo.username, demo.given_name, demo.family_name)


def write_bundle(folder: Path, students: int = 300, *, sections: int | None = None,
                 per_student: int = 5, seed: int = DEMO_SEED) -> DemoSizes:
    """Write the demo district's OneRoster bundle into `folder` (the same for the same numbers).

    `sections` is the total number of sections (by default about 25 students each) and
    `per_student` how many sections each student is in.
    """
    return write_demo_bundle(folder, students, sections=sections, per_student=per_student,
                             seed=seed, student=_account(DEMO_STUDENT),
                             teacher=_account(DEMO_TEACHER), admin=_account(DEMO_ADMIN))


def _set_demo_passwords(db: Session) -> None:
    from portal.auth.passwords import hash_password
    from portal.models import Person

    # Only where none is set: loading the demo again leaves the accounts as they are.
    for demo in DEMO_ACCOUNTS:
        person = db.scalar(select(Person).where(Person.username == demo.username))
        if person is not None and person.password_hash is None:
            person.password_hash = hash_password(demo.password)
    db.commit()


def _add_demo_apps(db: Session) -> None:
    from portal.admin.services import add_link_app, grant_app
    from portal.models import App

    for name, url, grants in DEMO_APPS:
        if db.scalar(select(App.id).where(App.name == name)) is not None:
            continue  # already there: an admin may have changed it since
        add_link_app(db, name, url)
        for grant in grants:
            grant_app(db, name, **grant)


def _only_the_demo(db: Session) -> bool:
    """True when the portal holds the demo district alone (or nothing): a smaller demo than the
    last one may then remove its people. Beside a real district (a wrong PORTAL_DATABASE_URL),
    the demo's import keeps the safeguard against removing most of them."""
    from portal.models import District
    return set(db.scalars(select(District.sourced_id))) <= {DISTRICT_SID}


def load_demo(db: Session, students: int = 300, *, sections: int | None = None,
              per_student: int = 5, seed: int = DEMO_SEED,
              progress: Progress | None = None) -> ImportSummary:
    """Import the demo district, give the demo accounts their passwords, add the demo apps."""
    with tempfile.TemporaryDirectory(prefix="portal-demo-") as tmp:
        write_bundle(Path(tmp), students, sections=sections, per_student=per_student, seed=seed)
        summary = import_roster(db, tmp, progress=progress, allow_removals=_only_the_demo(db))
    _set_demo_passwords(db)
    _add_demo_apps(db)
    return summary


def _demo_student_and_school(db: Session):
    from portal.models import Person, School
    return (db.scalar(select(Person).where(Person.username == DEMO_STUDENT.username)),
            db.scalar(select(School).where(School.sourced_id == ELEMENTARY)))


def add_demo_badge(db: Session, client, path: Path, *, default_expires: str, zone: tzinfo,
                   clock: Clock = utcnow) -> Path:
    """Let a visitor try a badge: the demo student's school also reads badges in the browser
    (/badge), and a badge for the demo student is written to `path` (one label, mode 0600), to
    print or to show on a phone to the camera. A new badge each time: the old one stops working.
    It ends as the district's badges do (PORTAL_BADGE_EXPIRES, in PORTAL_TIMEZONE)."""
    from portal.badges.policy import set_policy

    student, school = _demo_student_and_school(db)
    if school is None or student is None:
        raise LookupError("the demo district is not loaded")
    set_policy(db, school, allow_browser_scanner=True)
    return _write_demo_badge(db, client, path, student, school, default_expires=default_expires,
                             zone=zone, clock=clock)


def _write_demo_badge(db: Session, client, path: Path, student, school, *, default_expires: str,
                      zone: tzinfo, clock: Clock) -> Path:
    from portal.badges.services import issue_badge
    from portal.badges.sheets import SheetBadge, badge_name, render_sheet, write_private_file

    def sheet() -> bytes:
        issued = issue_badge(db, client, student, school=school, default_expires=default_expires,
                             zone=zone, clock=clock)
        return render_sheet([SheetBadge(issued.token, badge_name(student), school.name)])

    write_private_file(path, sheet)
    return path


def renew_demo_badge(db: Session, client, path: Path, *, default_expires: str, zone: tzinfo,
                     clock: Clock = utcnow) -> Path | None:
    """Write the demo student a new badge to `path` when the one there no longer works: it ended
    with the school year, was voided, or was replaced since (a visitor tried the teacher's
    Replace card, which issued a card after the file was written); or when the file is gone.
    None when it still works, or the database holds no demo district. The school's badge
    settings are left as they are (an admin may have changed them)."""
    from portal.models import Badge, BadgeKind

    student, school = _demo_student_and_school(db)
    if school is None or student is None:
        return None
    card = db.scalar(select(Badge).where(Badge.person_id == student.id, Badge.school_id == school.id,
                                         Badge.kind == BadgeKind.permanent, Badge.revoked_at.is_(None)))
    try:
        written = path.stat().st_mtime
    except OSError:
        written = None
    # The file is written just after its badge is issued: a card issued later is another one.
    if card is not None and card.usable_at(clock()) and written is not None \
            and card.issued_at.timestamp() <= written:
        return None
    return _write_demo_badge(db, client, path, student, school, default_expires=default_expires,
                             zone=zone, clock=clock)
