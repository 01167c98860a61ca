"""Small OneRoster bundles written in tmp_path, and a snapshot of every table to compare."""
from __future__ import annotations

import copy
import csv
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.db import Base
from portal.models import Event
from portal.roster import RosterError, import_roster
from portal.roster.record import ROSTER_KINDS

# Full OneRoster 1.1 headers, in the specification's order.
HEADERS = {
    "academicSessions": ["sourcedId", "status", "dateLastModified", "title", "type", "startDate",
                         "endDate", "parentSourcedId", "schoolYear"],
    "orgs": ["sourcedId", "status", "dateLastModified", "name", "type", "identifier",
             "parentSourcedId"],
    "courses": ["sourcedId", "status", "dateLastModified", "schoolYearSourcedId", "title",
                "courseCode", "grades", "orgSourcedId", "subjects", "subjectCodes"],
    "classes": ["sourcedId", "status", "dateLastModified", "title", "grades", "courseSourcedId",
                "classCode", "classType", "location", "schoolSourcedId", "termSourcedIds",
                "subjects", "subjectCodes", "periods"],
    "users": ["sourcedId", "status", "dateLastModified", "enabledUser", "orgSourcedIds", "role",
              "username", "userIds", "givenName", "familyName", "middleName", "identifier",
              "email", "sms", "phone", "agentSourcedIds", "grades", "password"],
    "enrollments": ["sourcedId", "status", "dateLastModified", "classSourcedId",
                    "schoolSourcedId", "userSourcedId", "role", "primary", "beginDate",
                    "endDate"],
}


def _user(sid, username, given, family, role="student", orgs="s1", grades="", **more):
    return {"sourcedId": sid, "enabledUser": "true", "orgSourcedIds": orgs, "role": role,
            "username": username, "givenName": given, "familyName": family, "grades": grades,
            **more}


def _enrollment(sid, cls, user, role="student", school="s1", primary="false"):
    return {"sourcedId": sid, "classSourcedId": cls, "schoolSourcedId": school,
            "userSourcedId": user, "role": role, "primary": primary}


ROSTER = {
    "academicSessions": [{"sourcedId": "y1", "title": "2025-2026", "type": "schoolYear",
                          "startDate": "2025-08-18", "endDate": "2026-06-12",
                          "schoolYear": "2026"}],
    "orgs": [
        {"sourcedId": "d1", "name": "Riverside Unified", "type": "district"},
        {"sourcedId": "s1", "name": "Maple Elementary", "type": "school", "identifier": "061",
         "parentSourcedId": "d1"},
        {"sourcedId": "s2", "name": "Lincoln Middle", "type": "school", "parentSourcedId": "d1"},
    ],
    "courses": [
        {"sourcedId": "c1", "title": "Grade 2 Homeroom", "grades": "02", "orgSourcedId": "d1"},
        {"sourcedId": "c2", "title": "Math 7", "grades": "07", "orgSourcedId": "d1"},
    ],
    "classes": [
        {"sourcedId": "k1", "title": "Room 4", "grades": "02", "courseSourcedId": "c1",
         "classCode": "R4", "classType": "homeroom", "schoolSourcedId": "s1",
         "termSourcedIds": "y1"},
        # No grades of its own: it takes its course's.
        {"sourcedId": "k2", "title": "Math 7 (A)", "courseSourcedId": "c2",
         "classType": "scheduled", "schoolSourcedId": "s2", "termSourcedIds": "y1"},
    ],
    "users": [
        _user("u1", "Ada.Lovelace", "Ada", "Lovelace", grades="02", identifier="1001",
              email="ada@example.org"),
        _user("u2", "grace.hopper", "Grace", "Hopper", grades="02", identifier="1002"),
        _user("u3", "maria.rivera", "Maria", "Rivera", role="teacher"),
        _user("u4", "sam.okafor", "Sam", "Okafor", role="administrator"),
        _user("u5", "priya.shah", "Priya", "Shah", role="administrator", orgs="d1"),
        _user("u6", "kofi.mensah", "Kofi", "Mensah", orgs="s2", grades="07",
              enabledUser="false"),
        # Parents often come without a username; skipped, so not checked.
        _user("u7", "", "Pat", "Lovelace", role="parent", orgs=""),
        _user("u8", "lee.park", "Lee", "Park", role="aide", orgs="s2"),
    ],
    "enrollments": [
        _enrollment("e1", "k1", "u1"),
        _enrollment("e2", "k1", "u2"),
        _enrollment("e3", "k1", "u3", role="teacher", primary="true"),
        _enrollment("e4", "k2", "u6", school="s2"),
        _enrollment("e5", "k2", "u8", role="aide", school="s2"),
    ],
}


def write_csv(path: Path, header: list[str], rows: list[dict], *, bom: bool = False) -> None:
    lines = [header] + [[row.get(c, "") for c in header] for row in rows]
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
        csv.writer(f).writerows(lines)


class Bundles:
    """Writes bundles: write(roster, modes=..., headers=...) -> folder."""

    def __init__(self, root: Path):
        self.root = root
        self.count = 0

    def write(self, roster: dict, *, modes: dict | None = None, headers: dict | None = None,
              bom: bool = False) -> Path:
        self.count += 1
        folder = self.root / f"bundle{self.count}"
        folder.mkdir()
        modes = modes or {}
        manifest = [{"propertyName": "manifest.version", "value": "1.0"},
                    {"propertyName": "oneroster.version", "value": "1.1"}]
        for name in HEADERS:
            mode = modes.get(name, "bulk" if name in roster else "absent")
            manifest.append({"propertyName": f"file.{name}", "value": mode})
            if name in roster:
                header = (headers or {}).get(name, HEADERS[name])
                write_csv(folder / f"{name}.csv", header, roster[name], bom=bom)
        write_csv(folder / "manifest.csv", ["propertyName", "value"], manifest, bom=bom)
        return folder


@pytest.fixture
def bundles(tmp_path) -> Bundles:
    return Bundles(tmp_path)


@pytest.fixture
def roster_rows() -> dict:
    """A fresh copy of the small roster, to change in a test."""
    return copy.deepcopy(ROSTER)


def snapshot(db) -> dict[str, list[tuple]]:
    """Every row of every table, in primary key order, but the audit events that record the
    imports themselves (portal.roster.record: a refused import writes its own and nothing else)."""
    db.rollback()
    out = {}
    for table in Base.metadata.sorted_tables:
        query = select(table).order_by(*table.primary_key.columns)
        if table.name == Event.__tablename__:
            query = query.where(table.c.kind.not_in(ROSTER_KINDS))
        out[table.name] = [tuple(r) for r in db.execute(query).all()]
    return out


@pytest.fixture
def imported(db_session, bundles, roster_rows):
    """The small roster already imported; returns the database snapshot after it."""
    import_roster(db_session, bundles.write(roster_rows))
    return snapshot(db_session)


def refused(db_session, path) -> list[str]:
    """The problems for which the import refuses the bundle at `path`: one line each."""
    with pytest.raises(RosterError) as caught:
        import_roster(db_session, path)
    for problem in caught.value.problems:
        assert "\n" not in problem and "Traceback" not in problem
    return caught.value.problems
