"""Write a made-up district as a OneRoster 1.1 CSV bundle, the same from the same seed.

Layout: one district; elementary (KG-05), middle (06-08) and high (09-12) schools of about
STUDENTS_PER_SCHOOL students each; students spread evenly over the thirteen grades. In each
school and grade every student is in one section of each of the first `per_student` subjects
("lanes": homeroom first in elementary school). Teachers (one per STUDENTS_PER_TEACHER students)
each teach sections of their school; every school has an administrator.
"""
from __future__ import annotations

import csv
import math
import random
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from portal.roster.names import FAMILY_NAMES, GIVEN_NAMES, SCHOOL_PREFIXES, SCHOOL_STEMS

GRADES = ["KG", *(f"{n:02d}" for n in range(1, 13))]
BANDS = (  # (key, grades, school name suffix, subjects in lane order)
    ("e", GRADES[0:6], "Elementary School",
     ["Homeroom", "Art", "Music", "Physical Education", "Library", "Science Lab", "Spanish",
      "Computer Lab"]),
    ("m", GRADES[6:9], "Middle School",
     ["Math", "English Language Arts", "Science", "Social Studies", "Physical Education", "Art",
      "Music", "Spanish"]),
    ("h", GRADES[9:13], "High School",
     ["Mathematics", "English", "Science", "History", "Physical Education", "Spanish",
      "Computer Science", "Art"]),
)
MAX_PER_STUDENT = 8
STUDENTS_PER_SCHOOL = 500
STUDENTS_PER_TEACHER = 20
CLASS_SIZE = 25
DISTRICT_SID = "rusd"
DISTRICT_NAME = "Riverside Unified School District"
YEAR_SID = "sy-2025"
STAMP = "2025-08-01T00:00:00.000Z"  # dateLastModified: fixed, so the bundle is the same each time


class Account(NamedTuple):
    username: str
    given_name: str
    family_name: str


@dataclass
class School:
    sid: str
    name: str
    band: tuple
    groups: dict[str, list[int]] = field(default_factory=dict)  # grade -> student numbers
    teachers: list[int] = field(default_factory=list)


@dataclass
class DemoSizes:
    schools: int = 0
    students: int = 0
    teachers: int = 0
    sections: int = 0
    enrollments: int = 0


def _ascii(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9-]", "", plain.lower())


class _Usernames:
    """first.last, with a number from 2 up on a clash."""

    def __init__(self, reserved: set[str]):
        self.taken = set(reserved)
        self.next: dict[str, int] = {}

    def make(self, given: str, family: str) -> str:
        base = f"{_ascii(given)}.{_ascii(family)}"
        name, n = base, self.next.get(base, 1)
        while name in self.taken:
            n += 1
            name = f"{base}{n}"
        self.next[base] = n
        self.taken.add(name)
        return name


def _glabel(grade: str) -> str:
    return "K" if grade == "KG" else str(int(grade))


def _school_names(count: int, suffix: str, rng: random.Random) -> list[str]:
    stems = SCHOOL_STEMS[:]
    rng.shuffle(stems)
    names = [f"{p}{s}" for p in SCHOOL_PREFIXES for s in stems]
    return [f"{names[i % len(names)]} {suffix}" + (f" {i // len(names) + 1}" if i >= len(names)
                                                     else "") for i in range(count)]


def _allocate(weights: list[int], total: int | None) -> list[int]:
    """Sections per lane: CLASS_SIZE students each, or `total` shared out by size (at least 1)."""
    if total is None:
        return [max(1, math.ceil(w / CLASS_SIZE)) for w in weights]
    whole = sum(weights) or 1
    shares = [total * w / whole for w in weights]
    counts = [max(1, int(s)) for s in shares]
    spare = total - sum(counts)
    by_remainder = sorted(range(len(weights)), key=lambda i: (counts[i] - shares[i], i))
    for i in by_remainder[:max(spare, 0)]:
        counts[i] += 1
    return counts


def _writer(folder: Path, name: str, header: list[str]):
    f = open(folder / f"{name}.csv", "w", newline="", encoding="utf-8")
    w = csv.writer(f)
    w.writerow(header)
    return f, w


def write_demo_bundle(folder: Path, students: int, *, sections: int | None = None,
                      per_student: int = 5, seed: int = 2025,
                      student: Account, teacher: Account, admin: Account) -> DemoSizes:
    """Write the bundle into `folder`. `student` is a grade 02 student of the first elementary
    school, in `teacher`'s homeroom; `admin` is the district administrator."""
    if students < 16:
        raise ValueError("a demo district needs at least 16 students")
    if not 1 <= per_student <= MAX_PER_STUDENT:
        raise ValueError(f"sections per student must be from 1 to {MAX_PER_STUDENT}")
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = _Usernames({student.username, teacher.username, admin.username})
    sizes = DemoSizes(students=students)

    # Schools, and students into grades (round robin) and schools (round robin per grade).
    schools: list[School] = []
    by_band: dict[str, list[School]] = {}
    for band in BANDS:
        share = students * len(band[1]) // len(GRADES)
        count = max(1, round(share / STUDENTS_PER_SCHOOL))
        by_band[band[0]] = [School(f"sch-{band[0]}{i + 1:03d}", name, band)
                            for i, name in enumerate(_school_names(count, band[2], rng))]
        schools += by_band[band[0]]
    band_of = {g: band for band in BANDS for g in band[1]}
    seen_in_grade = dict.fromkeys(GRADES, 0)
    for i in range(students):
        grade = GRADES[i % len(GRADES)]
        options = by_band[band_of[grade][0]]
        school = options[seen_in_grade[grade] % len(options)]
        seen_in_grade[grade] += 1
        school.groups.setdefault(grade, []).append(i)
    demo_index = GRADES.index("02")  # the first grade 02 student: first elementary, first homeroom

    # Sections: (school, grade, lane) with how many sections share that lane.
    lanes = [(s, g, lane) for s in schools for g in s.band[1] if g in s.groups
             for lane in range(per_student)]
    counts = _allocate([len(s.groups[g]) for s, g, _ in lanes], sections)
    sizes.sections = sum(counts)
    sizes.schools = len(schools)

    # Teachers and administrators.
    staff: list[tuple[str, str, Account, str]] = []  # sid, role, account, org
    for s in schools:
        size = sum(len(v) for v in s.groups.values())
        for _ in range(max(1, math.ceil(size / STUDENTS_PER_TEACHER))):
            account = teacher if not staff else None
            if account is None:
                given, family = rng.choice(GIVEN_NAMES), rng.choice(FAMILY_NAMES)
                account = Account(names.make(given, family), given, family)
            s.teachers.append(len(staff))
            staff.append((f"tch-{len(staff) + 1:05d}", "teacher", account, s.sid))
    sizes.teachers = len(staff)
    for n, s in enumerate(schools, 1):
        given, family = rng.choice(GIVEN_NAMES), rng.choice(FAMILY_NAMES)
        staff.append((f"adm-{n:04d}", "administrator",
                      Account(names.make(given, family), given, family), s.sid))
    staff.append(("adm-district", "administrator", admin, DISTRICT_SID))

    f, w = _writer(folder, "manifest", ["propertyName", "value"])
    w.writerows([["manifest.version", "1.0"], ["oneroster.version", "1.1"],
                 ["source.systemName", "Portal demo generator"],
                 *([f"file.{n}", "bulk"] for n in ("academicSessions", "orgs", "courses",
                                                   "classes", "users", "enrollments")),
                 *([f"file.{n}", "absent"] for n in ("categories", "classResources",
                                                     "courseResources", "demographics",
                                                     "lineItems", "resources", "results"))])
    f.close()

    f, w = _writer(folder, "academicSessions", ["sourcedId", "status", "dateLastModified", "title",
                                                "type", "startDate", "endDate",
                                                "parentSourcedId", "schoolYear"])
    w.writerow([YEAR_SID, "active", STAMP, "2025-2026", "schoolYear", "2025-08-18", "2026-06-12",
                "", "2026"])
    w.writerow([f"{YEAR_SID}-s1", "active", STAMP, "Fall 2025", "semester", "2025-08-18",
                "2026-01-16", YEAR_SID, "2026"])
    w.writerow([f"{YEAR_SID}-s2", "active", STAMP, "Spring 2026", "semester", "2026-01-20",
                "2026-06-12", YEAR_SID, "2026"])
    f.close()

    f, w = _writer(folder, "orgs", ["sourcedId", "status", "dateLastModified", "name", "type",
                                    "identifier", "parentSourcedId"])
    w.writerow([DISTRICT_SID, "active", STAMP, DISTRICT_NAME, "district", "0612345", ""])
    for n, s in enumerate(schools, 1):
        w.writerow([s.sid, "active", STAMP, s.name, "school", f"06123450{n:05d}", DISTRICT_SID])
    f.close()

    f, w = _writer(folder, "courses", ["sourcedId", "status", "dateLastModified",
                                       "schoolYearSourcedId", "title", "courseCode", "grades",
                                       "orgSourcedId", "subjects", "subjectCodes"])
    for key, grades, _, subjects in BANDS:
        for g in grades:
            for lane in range(per_student):
                title = f"{subjects[lane]} {_glabel(g)}" if lane or key != "e" else \
                    f"Grade {_glabel(g)} Homeroom"
                w.writerow([f"crs-{g}-{lane}", "active", STAMP, YEAR_SID, title,
                            f"{subjects[lane][:4].upper()}-{g}", g, DISTRICT_SID, subjects[lane], ""])
    f.close()

    # Classes and enrollments together: enrollments are written as sections are made.
    fc, wc = _writer(folder, "classes", ["sourcedId", "status", "dateLastModified", "title",
                                         "grades", "courseSourcedId", "classCode", "classType",
                                         "location", "schoolSourcedId", "termSourcedIds",
                                         "subjects", "subjectCodes", "periods"])
    fe, we = _writer(folder, "enrollments", ["sourcedId", "status", "dateLastModified",
                                             "classSourcedId", "schoolSourcedId",
                                             "userSourcedId", "role", "primary", "beginDate",
                                             "endDate"])
    enrollment = 0
    turn = {s.sid: 0 for s in schools}
    for (s, g, lane), count in zip(lanes, counts):
        group = s.groups[g]
        subject = s.band[3][lane]
        homeroom = s.band[0] == "e" and lane == 0
        for n in range(count):
            sid = f"cls-{s.sid[4:]}-{g}-{lane}-{n + 1}"
            base = f"Grade {_glabel(g)} Homeroom" if homeroom else f"{subject} {_glabel(g)}"
            title = f"{base} ({chr(65 + n)})" if 1 < count <= 26 else \
                f"{base} ({n + 1})" if count > 26 else base
            wc.writerow([sid, "active", STAMP, title, g, f"crs-{g}-{lane}",
                         f"{s.sid[4:].upper()}-{g}-{lane}-{n + 1}",
                         "homeroom" if homeroom else "scheduled", f"Room {100 + n + lane * 20}",
                         s.sid, YEAR_SID, subject, "", "" if homeroom else str(lane + 1)])
            # Teachers take turns through their school's sections; the demo teacher has the
            # demo student's homeroom.
            if s is schools[0] and g == "02" and homeroom and n == 0:
                who = 0
            else:
                who = s.teachers[turn[s.sid] % len(s.teachers)]
                turn[s.sid] += 1
            enrollment += 1
            we.writerow([f"enr-{enrollment:07d}", "active", STAMP, sid, s.sid, staff[who][0],
                         "teacher", "true", "", ""])
            for j in range(n * len(group) // count, (n + 1) * len(group) // count):
                enrollment += 1
                we.writerow([f"enr-{enrollment:07d}", "active", STAMP, sid, s.sid,
                             f"stu-{group[j] + 1:06d}", "student", "false", "", ""])
    fc.close()
    fe.close()
    sizes.enrollments = enrollment

    f, w = _writer(folder, "users", ["sourcedId", "status", "dateLastModified", "enabledUser",
                                     "orgSourcedIds", "role", "username", "userIds", "givenName",
                                     "familyName", "middleName", "identifier", "email", "sms",
                                     "phone", "agentSourcedIds", "grades", "password"])
    for s in schools:
        for g, group in s.groups.items():
            for i in group:
                if i == demo_index:
                    account = student
                else:
                    given, family = rng.choice(GIVEN_NAMES), rng.choice(FAMILY_NAMES)
                    account = Account(names.make(given, family), given, family)
                w.writerow([f"stu-{i + 1:06d}", "active", STAMP, "true", s.sid, "student",
                            account.username, "", account.given_name, account.family_name, "",
                            f"{200001 + i}", f"{account.username}@students.riverside.example",
                            "", "", "", g, ""])
    for sid, role, account, org in staff:
        w.writerow([sid, "active", STAMP, "true", org, role, account.username, "",
                    account.given_name, account.family_name, "", "",
                    f"{account.username}@riverside.example", "", "", "", "", ""])
    f.close()
    return sizes
