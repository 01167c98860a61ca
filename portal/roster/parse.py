"""Read and check every row of a OneRoster 1.1 CSV bundle, before anything touches the database.

Checks here need only the bundle: required columns and values, enumerated values, lengths,
duplicate sourcedIds and username clashes inside users.csv. Checks that need the database too
(does this enrollment's user exist?) are in diff.py.

The `password` column of users.csv is never read: plaintext passwords must not travel in roster
files, and the portal sets passwords itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

from portal.models.roster import canonical_username, typeable_username
from portal.names import tidy
from portal.roster.bundle import FILES, Source, decode, read_manifest, table
from portal.roster.problems import Problems, RosterError


def _lower_map(*values: str) -> dict[str, str]:
    return {v.lower(): v for v in values}


ORG_TYPES = _lower_map("district", "school", "department", "local", "state", "national")
USER_ROLES = _lower_map("administrator", "aide", "guardian", "parent", "proctor", "relative",
                        "student", "teacher")
# The portal signs in students and staff only; these users.csv rows are counted and skipped.
SKIPPED_ROLES = {"guardian", "parent", "proctor", "relative"}
ENROLLMENT_ROLES = _lower_map("administrator", "aide", "proctor", "student", "teacher")
CLASS_TYPES = _lower_map("homeroom", "scheduled")
SESSION_TYPES = _lower_map("gradingPeriod", "semester", "schoolYear", "term")
GRADES = _lower_map("IT", "PR", "PK", "TK", "KG", *(f"{n:02d}" for n in range(1, 14)), "PS", "UG",
                    "Other")
BOOLEANS = {"true": True, "false": False}
STATUSES = {"active": False, "tobedeleted": True}
MAX_LENGTH = 255  # every text column the portal stores is VARCHAR(255)
_PLAIN_ROLES = set(ENROLLMENT_ROLES.values())
_PLAIN_BOOLEANS = {"true", "false", ""}


# Records: line, sourcedId and whether the row says tobedeleted, then the fields the portal
# keeps. A removed row carries only the first three; the rest keep their defaults.
class Org(NamedTuple):
    line: int
    sid: str
    deleted: bool
    name: str = ""
    type: str = ""
    identifier: str = ""
    parent: str = ""


class User(NamedTuple):
    line: int
    sid: str
    deleted: bool
    role: str = ""
    enabled: bool = False
    orgs: tuple[str, ...] = ()
    username: str = ""  # lower-case
    given_name: str = ""
    family_name: str = ""
    student_number: str = ""
    email: str = ""
    grades: str = ""


class Course(NamedTuple):
    line: int
    sid: str
    deleted: bool
    title: str = ""
    grades: str = ""


class Class(NamedTuple):
    line: int
    sid: str
    deleted: bool
    title: str = ""
    grades: str = ""
    course: str = ""
    class_code: str = ""
    school: str = ""
    terms: tuple[str, ...] = ()


class Enrollment(NamedTuple):
    line: int
    sid: str
    deleted: bool
    class_sid: str = ""
    school_sid: str = ""
    user_sid: str = ""
    role: str = ""
    primary: bool = False


class Session(NamedTuple):
    line: int
    sid: str
    deleted: bool


@dataclass
class Bundle:
    """The checked rows of each file (None for a file the manifest marks absent)."""
    modes: dict[str, str]
    rows: dict[str, list | None] = field(default_factory=dict)

    def active(self, name: str) -> list:
        return [r for r in self.rows.get(name) or () if not r.deleted]


_REQUIRED = object()


class _Row:
    """One row being checked: problems name the file, line and column."""

    __slots__ = ("filename", "line", "problems", "ok")

    def __init__(self, filename: str, problems: Problems):
        self.filename = filename
        self.problems = problems
        self.line = 0
        self.ok = True

    def fail(self, message: str) -> None:
        self.ok = False
        self.problems.add(f"{self.filename} line {self.line}: {message}")

    def need(self, column: str, value: str) -> str:
        if not value:
            self.fail(f"{column} is empty")
        elif len(value) > MAX_LENGTH:
            self.fail(f"{column} is longer than {MAX_LENGTH} characters")
        return value

    def fit(self, column: str, value: str) -> str:
        if len(value) > MAX_LENGTH:
            self.fail(f"{column} is longer than {MAX_LENGTH} characters")
        return value

    def choice(self, column: str, value: str, allowed: dict, default=_REQUIRED):
        """The canonical form of an enumerated value (`allowed` maps lower case to it)."""
        found = allowed.get(value, _REQUIRED)  # most files use the canonical spelling
        if found is _REQUIRED:
            found = allowed.get(value.lower(), _REQUIRED)
        if found is not _REQUIRED:
            return found
        if not value:
            if default is _REQUIRED:
                self.fail(f"{column} is empty")
            return default
        shown = ", ".join(v if isinstance(v, str) else k for k, v in allowed.items())
        self.fail(f'{column} "{value}" is not one of {shown}')
        return default

    def grades(self, column: str, value: str) -> str:
        if not value:
            return ""
        codes = []
        for code in value.split(","):
            code = code.strip()
            if code.lower() not in GRADES:
                self.fail(f'{column} "{code}" is not a OneRoster grade (KG, 01 ... 13, PK, ...)')
                return ""
            codes.append(GRADES[code.lower()])
        return self.fit(column, ",".join(codes))


def _split(value: str) -> tuple[str, ...]:
    return tuple(v for v in (p.strip() for p in value.split(",")) if v)


def _rows(filename: str, text: str, kind: type, spec: tuple, problems: Problems) -> list:
    """Check each row of one file: a unique sourcedId and a known status, then the file's own rules."""
    required, optional, build, spaced = spec
    row = _Row(filename, problems)
    seen: dict[str, int] = {}
    out = []
    append = out.append
    status_at = len(required)  # status is always the first optional column
    removed_tail = tuple(kind._field_defaults[f] for f in kind._fields[3:])
    for line, values in table(filename, text, required, ("status",) + optional, problems, spaced):
        row.line, row.ok = line, True
        sid = values[0]
        if not sid or len(sid) > MAX_LENGTH:
            row.need("sourcedId", sid)
        first = seen.setdefault(sid, line)
        if first != line:
            row.fail(f'sourcedId "{sid}" is also on line {first}')
        status = values[status_at]
        if status and row.choice("status", status, STATUSES, False):
            # Removing a row needs only its sourcedId.
            record = kind(line, sid, True, *removed_tail)
        else:
            record = build(row, values, line, sid)
        if row.ok:
            append(record)
    return out


def _org(row: _Row, v: list[str], line: int, sid: str) -> Org:
    # sourcedId name type | status identifier parentSourcedId
    return Org(line, sid, False, row.need("name", tidy(v[1])), row.choice("type", v[2], ORG_TYPES),
               row.fit("identifier", v[4]), v[5])


def _user(row: _Row, v: list[str], line: int, sid: str) -> User:
    # sourcedId enabledUser orgSourcedIds role username givenName familyName
    # | status identifier email grades
    role = row.choice("role", v[3], USER_ROLES)
    if role in SKIPPED_ROLES:
        return User(line, sid, False, role)  # counted and skipped: nothing else matters
    orgs = _split(v[2])
    if not orgs:
        row.fail("orgSourcedIds is empty")
    written = row.need("username", v[4])
    username = canonical_username(written)   # a few letters grow ("İ" is two characters)
    if len(written) <= MAX_LENGTH < len(username):
        row.fail(f"username is longer than {MAX_LENGTH} characters in lower case")
    if not typeable_username(username):
        # Nobody could type it at the sign-in page, nor find it: a no-break or zero-width space
        # (pasted from a spreadsheet), a direction mark, a line separator.
        bad = next(c for c in username if not typeable_username(c))
        row.fail(f"username holds a character that cannot be typed (U+{ord(bad):04X}); "
                 "fix it in the student information system and export again")
    # One of the two names may be empty: a person known by one name (Madonna, Suharto) comes
    # with only a given or only a family name, and the portal signs them in all the same.
    given, family = row.fit("givenName", tidy(v[5])), row.fit("familyName", tidy(v[6]))
    if not given and not family:
        invisible = next((f"U+{ord(c):04X}" for c in v[5] + v[6] if not c.isspace()), None)
        row.fail("givenName and familyName are both empty"
                 + (f" (they hold only invisible characters, such as {invisible})" if invisible else "")
                 + "; a person needs at least one of them: add it in the student information "
                 "system and export again")
    return User(line, sid, False, role, row.choice("enabledUser", v[1], BOOLEANS, True), orgs,
                username, given, family, row.fit("identifier", v[8]),
                row.fit("email", v[9]), row.grades("grades", v[10]))


def _course(row: _Row, v: list[str], line: int, sid: str) -> Course:
    # sourcedId title | status grades
    return Course(line, sid, False, row.need("title", tidy(v[1])), row.grades("grades", v[3]))


def _class(row: _Row, v: list[str], line: int, sid: str) -> Class:
    # sourcedId title courseSourcedId schoolSourcedId | status grades classCode classType termSourcedIds
    row.choice("classType", v[7], CLASS_TYPES, "")
    return Class(line, sid, False, row.need("title", tidy(v[1])), row.grades("grades", v[5]),
                 row.need("courseSourcedId", v[2]), row.fit("classCode", v[6]),
                 row.need("schoolSourcedId", v[3]), _split(v[8]))


def _enrollment(row: _Row, v: list[str], line: int, sid: str) -> Enrollment:
    # sourcedId classSourcedId schoolSourcedId userSourcedId role | status primary
    # The usual row, checked in one go (most files have hundreds of thousands of these):
    if v[1] and v[2] and v[3] and v[4] in _PLAIN_ROLES and v[6] in _PLAIN_BOOLEANS:
        return Enrollment(line, sid, False, v[1], v[2], v[3], v[4], v[6] == "true")
    return Enrollment(line, sid, False, row.need("classSourcedId", v[1]),
                      row.need("schoolSourcedId", v[2]), row.need("userSourcedId", v[3]),
                      row.choice("role", v[4], ENROLLMENT_ROLES),
                      row.choice("primary", v[6], BOOLEANS, False))


def _session(row: _Row, v: list[str], line: int, sid: str) -> Session:
    # sourcedId title type
    row.need("title", v[1])
    row.choice("type", v[2], SESSION_TYPES)
    return Session(line, sid, False)


# file -> (record type, (required columns, optional columns besides status, row builder,
# the columns of names and titles: tidied, portal.names.tidy, and a line break in them is a space))
SPECS = {
    "orgs": (Org, (("sourcedId", "name", "type"), ("identifier", "parentSourcedId"), _org,
                   ("name",))),
    "users": (User, (("sourcedId", "enabledUser", "orgSourcedIds", "role", "username", "givenName",
                      "familyName"), ("identifier", "email", "grades"), _user,
                     ("givenName", "familyName"))),
    "courses": (Course, (("sourcedId", "title"), ("grades",), _course, ("title",))),
    "classes": (Class, (("sourcedId", "title", "courseSourcedId", "schoolSourcedId"),
                        ("grades", "classCode", "classType", "termSourcedIds"), _class, ("title",))),
    "enrollments": (Enrollment, (("sourcedId", "classSourcedId", "schoolSourcedId",
                                  "userSourcedId", "role"), ("primary",), _enrollment, ())),
    "academicSessions": (Session, (("sourcedId", "title", "type"), (), _session, ())),
}


def _check_usernames(users: list[User], problems: Problems) -> None:
    """Usernames are unique without regard to case among the people the portal signs in."""
    seen: dict[str, int] = {}
    for user in users:
        if user.deleted or user.role in SKIPPED_ROLES:
            continue
        first = seen.setdefault(user.username, user.line)
        if first != user.line:
            problems.add(f'users.csv line {user.line}: username "{user.username}" is also used on '
                         f"line {first} (usernames are compared without regard to case)")


def read_bundle(path: Path | str, progress: Callable[[str, int, int], None] | None = None,
                manifest_read: Callable[[dict[str, str]], None] | None = None) -> Bundle:
    """Open the bundle at `path` and check every row; raise RosterError listing the problems.
    `manifest_read` hears how each file is to be read, once the manifest says it."""
    source = Source(Path(path))
    try:
        modes = read_manifest(source)
        if manifest_read:
            manifest_read(modes)
        present = [n for n in FILES if modes[n] != "absent"]
        total = sum(source.size(f"{n}.csv") for n in present) or 1
        done = 0
        bundle = Bundle(modes=modes)
        problems = Problems()
        for name in FILES:
            if modes[name] == "absent":
                bundle.rows[name] = None
                continue
            filename = f"{name}.csv"
            kind, spec = SPECS[name]
            try:
                text = decode(filename, source.read(filename))
            except RosterError as e:
                problems.take(e)
                continue
            bundle.rows[name] = _rows(filename, text, kind, spec, problems)
            del text
            done += source.size(filename)
            if progress:
                progress("reading", done, total)
        if bundle.rows.get("users"):
            _check_usernames(bundle.rows["users"], problems)
        problems.raise_if_any()
        return bundle
    finally:
        source.close()
