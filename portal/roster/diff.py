"""Compare a checked bundle with the database and plan every write, or refuse the bundle.

The rules, per file, from the manifest's processing mode:
- bulk: the file is the whole truth; a row in the database but not in the file is removed.
- delta: only the rows in the file change; the rest stay as they are.
- absent: the file says nothing; nothing of that kind changes.
In every mode a row with status `tobedeleted` is removed. Removing a person or section also
removes their enrollments (counted in the summary), as the database's cascades would.

Everything is compared as tuples in sourcedId space; apply.py turns sourcedIds into ids.
"""
from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass, field

from portal.models.roster import canonical_username
from portal.names import tidy
from portal.roster.parse import SKIPPED_ROLES, Bundle
from portal.roster.problems import Problems
from portal.roster.state import State
from portal.roster.summary import NAMED, ImportSummary

# Column order of the compared tuples: State's tuples without their id. Foreign keys are
# sourcedIds under the name of what they point at.
DISTRICT_COLUMNS = ("name",)
SCHOOL_COLUMNS = ("district", "name", "identifier")
SECTION_COLUMNS = ("school", "title", "class_code", "course_title", "grades")
PERSON_COLUMNS = ("role", "district", "username", "given_name", "family_name", "email",
                  "student_number", "grades", "enabled")
ENROLLMENT_COLUMNS = ("person", "section", "role", "primary")

# OneRoster user roles -> portal roles (administrator is decided in _person_role).
PORTAL_ROLES = {"student": "student", "teacher": "teacher", "aide": "teacher"}


@dataclass
class Changes:
    inserts: list[dict] = field(default_factory=list)  # new rows, with sourced_id
    updates: list[dict] = field(default_factory=list)  # changed rows, with id
    deletes: list[int] = field(default_factory=list)   # ids

    def compare(self, existing: tuple | None, sid: str, columns: tuple, wanted: tuple) -> bool:
        """Plan an insert or update when `wanted` differs from `existing`; True if it does."""
        if existing is None:
            row = dict(zip(columns, wanted))
            row["sourced_id"] = sid
            self.inserts.append(row)
            return True
        if existing[1:] != wanted:
            row = dict(zip(columns, wanted))
            row["id"] = existing[0]
            self.updates.append(row)
            return True
        return False

    def __len__(self) -> int:
        return len(self.inserts) + len(self.updates) + len(self.deletes)


@dataclass
class Plan:
    districts: Changes = field(default_factory=Changes)
    schools: Changes = field(default_factory=Changes)
    sections: Changes = field(default_factory=Changes)
    people: Changes = field(default_factory=Changes)
    enrollments: Changes = field(default_factory=Changes)
    memberships_added: list[tuple[str, str]] = field(default_factory=list)    # person, school
    memberships_removed: list[tuple[str, str]] = field(default_factory=list)  # person, school
    # People kept under a new sourcedId: person id -> the new one (written before the updates)
    rekeys: dict[int, str] = field(default_factory=dict)
    summary: ImportSummary = field(default_factory=ImportSummary)

    @property
    def writes(self) -> int:
        return (len(self.districts) + len(self.schools) + len(self.sections) + len(self.people)
                + len(self.enrollments) + len(self.memberships_added)
                + len(self.memberships_removed) + len(self.rekeys))


@dataclass
class Known:
    """sourcedIds that exist once the import is done, and those it removes."""
    keys: Set[str]
    removed: set[str]


@dataclass
class Sections(Known):
    school: dict[str, str]  # every class once the import is done -> its school


@dataclass
class OrgIndex:
    districts: Known
    schools: dict[str, str | None]  # every school after the import -> its district
    removed_schools: set[str]
    others: set[str]  # orgs of other types in the bundle (department, ...): valid, not kept


def _removals(mode: str, existing: dict, keep, in_file: Iterable[str]) -> set[str]:
    """sourcedIds to remove: per the mode, and any row of the file that is not kept."""
    if mode == "absent":
        return set()
    if mode == "bulk":
        return {sid for sid in existing if sid not in keep}
    return {sid for sid in in_file if sid in existing and sid not in keep}


def _where(filename: str, mode: str) -> str:
    return {"bulk": filename, "delta": f"{filename} or the database"}.get(mode, "the database")


def _not_in(filename: str, line: int, column: str, value: str, where: str) -> str:
    return f'{filename} line {line}: {column} "{value}" is not in {where}'


def _plan_orgs(bundle: Bundle, state: State, plan: Plan, problems: Problems) -> OrgIndex:
    mode = bundle.modes["orgs"]
    rows = bundle.rows["orgs"] or []
    active = {o.sid: o for o in rows if not o.deleted}
    districts = {sid: o for sid, o in active.items() if o.type == "district"}
    schools = {sid: o for sid, o in active.items() if o.type == "school"}
    removed_d = _removals(mode, state.districts, districts, (o.sid for o in rows))
    removed_s = _removals(mode, state.schools, schools, (o.sid for o in rows))
    known_d = (state.districts.keys() - removed_d) | districts.keys()
    kept_schools = state.schools.keys() - removed_s

    def known(parent: str) -> bool:
        return parent in active or parent in known_d or parent in kept_schools

    for o in active.values():
        # A delta carries changed rows only: a school already here may sit under an org the
        # portal does not keep (a "local" region), which the delta need not repeat.
        if o.parent and not known(o.parent) and not (
                mode == "delta" and (o.type != "school" or o.sid in state.schools)):
            problems.add(_not_in("orgs.csv", o.line, "parentSourcedId", o.parent,
                                 _where("orgs.csv", mode)))

    def district_of(org) -> str | None:
        # A school's district is the nearest district above it (a parent may be a "local" org,
        # or a school already here, whose district is then this one's too).
        seen = set()
        child, parent = org, org.parent
        while parent and parent not in seen:
            if parent in known_d:
                return parent
            seen.add(parent)
            if parent in active:
                child, parent = active[parent], active[parent].parent
            elif parent in kept_schools:
                return state.schools[parent][1] if state.schools[parent][1] in known_d else None
            elif org.sid in state.schools:  # above it, an org a delta need not repeat
                district = state.schools[org.sid][1]
                return district if district in known_d else None
            else:
                if child is not org and mode == "delta":
                    # A new school under an org of this delta whose parent is unknown (the
                    # check above let that org pass): the school would be in no district.
                    unplaced.add(_not_in("orgs.csv", child.line, "parentSourcedId", parent,
                                         _where("orgs.csv", mode)))
                return None
        return None

    school_district: dict[str, str | None] = {}
    for sid in kept_schools:
        district = state.schools[sid][1]
        school_district[sid] = district if district in known_d else None
    unplaced: set[str] = set()
    for sid, o in schools.items():
        school_district[sid] = district_of(o)
    for problem in sorted(unplaced):
        problems.add(problem)

    for sid, o in districts.items():
        plan.districts.compare(state.districts.get(sid), sid, DISTRICT_COLUMNS, (o.name,))
    for sid, o in schools.items():
        plan.schools.compare(state.schools.get(sid), sid, SCHOOL_COLUMNS,
                             (school_district[sid], o.name, o.identifier))
    plan.districts.deletes = [state.districts[sid][0] for sid in removed_d]
    plan.schools.deletes = [state.schools[sid][0] for sid in removed_s]
    others = {sid for sid, o in active.items() if o.type not in ("district", "school")}
    return OrgIndex(Known(known_d, removed_d), school_district, removed_s, others)


def _plan_sections(bundle: Bundle, state: State, plan: Plan, problems: Problems,
                   orgs: OrgIndex) -> Sections:
    mode = bundle.modes["classes"]
    rows = bundle.rows["classes"] or []
    courses = {c.sid: c for c in bundle.active("courses")}
    courses_complete = bundle.modes["courses"] == "bulk"
    terms = {s.sid for s in bundle.active("academicSessions")}
    terms_complete = bundle.modes["academicSessions"] == "bulk"
    active = {c.sid: c for c in rows if not c.deleted}
    removed = _removals(mode, state.sections, active, (c.sid for c in rows))
    if orgs.removed_schools:
        # A section goes with its school.
        removed |= {sid for sid, row in state.sections.items()
                    if row[1] in orgs.removed_schools and sid not in active}

    for sid, c in active.items():
        if c.school not in orgs.schools:
            problems.add(f'classes.csv line {c.line}: schoolSourcedId "{c.school}" is not a '
                         f'school in {_where("orgs.csv", bundle.modes["orgs"])}')
        course = courses.get(c.course)
        if course is None and courses_complete:
            problems.add(_not_in("classes.csv", c.line, "courseSourcedId", c.course, "courses.csv"))
        if terms_complete:
            for term in c.terms:
                if term not in terms:
                    problems.add(_not_in("classes.csv", c.line, "termSourcedIds", term,
                                         "academicSessions.csv"))
        existing = state.sections.get(sid)
        # Without its course in this bundle a section keeps the course details it had.
        course_title = course.title if course else (existing[4] if existing else "")
        grades = c.grades or (course.grades if course else (existing[5] if existing else ""))
        plan.sections.compare(existing, sid, SECTION_COLUMNS,
                              (c.school, c.title, c.class_code, course_title, grades))
    plan.sections.deletes = [state.sections[sid][0] for sid in removed]
    school = {sid: row[1] for sid, row in state.sections.items() if sid not in removed}
    school.update((sid, c.school) for sid, c in active.items())
    return Sections(school.keys(), removed, school)


def _person_role(user, has_district: bool) -> str:
    """Map a OneRoster role to the portal's.

    student -> student; teacher and aide -> teacher; administrator -> district_admin when one
    of their orgSourcedIds is a district, else school_admin (their orgs are schools).
    """
    if user.role == "administrator":
        return "district_admin" if has_district else "school_admin"
    return PORTAL_ROLES[user.role]


def _fold(text: str | None) -> str:
    # Tidied as the import tidies names: one stored before it did is the same name.
    return tidy(text or "").casefold()


def _same_person(old: tuple, user) -> bool:
    """Whether a new row with a gone person's username is that person, by more than the username:
    a school may give a leaver's username to a new child in the same import. Their student
    numbers, when both have one, decide (a name may change with them); without, their given and
    family names must be the same, and their email addresses too when both have one."""
    old_number, new_number = _fold(old[7]), _fold(user.student_number)
    if old_number and new_number:
        return old_number == new_number
    old_email, new_email = _fold(old[6]), _fold(user.email)
    return (_fold(old[4]) == _fold(user.given_name) and _fold(old[5]) == _fold(user.family_name)
            and (not old_email or not new_email or old_email == new_email))


def _rekeys(state: State, active: dict, gone: set[str], orgs: OrgIndex) -> dict[str, str]:
    """People whose sourcedId the import drops while a new row is theirs: the same username and
    role, and the same student number (or, without, name and email; _same_person). The student
    information system gave them a new sourcedId. {old sourcedId: new sourcedId}.

    They are kept, not removed and added: a hold, opt-outs, badges, the records of what apps
    received and deletion requests belong to the person, not to a sourcedId. A username that
    comes back in another role, or as someone else (a leaver's username given to a new child),
    is someone else's account now (removed and added)."""
    if not gone:
        return {}
    by_name: dict[str, str | None] = {}
    for sid in gone:
        name = canonical_username(state.people[sid][3])
        by_name[name] = None if name in by_name else sid    # two of them: neither is this one
    found = {}
    for sid, u in active.items():
        old = by_name.get(u.username)
        if old is not None and sid not in state.people and state.people[old][1] == _person_role(
                u, any(org in orgs.districts.keys for org in u.orgs)) and _same_person(state.people[old], u):
            found[old] = sid
    return found


def _plan_people(bundle: Bundle, state: State, plan: Plan, problems: Problems,
                 orgs: OrgIndex) -> tuple[Known, set[str]]:
    mode = bundle.modes["users"]
    rows = bundle.rows["users"] or []
    skipped = {u.sid for u in rows if not u.deleted and u.role in SKIPPED_ROLES}
    active = {u.sid: u for u in rows if not u.deleted and u.role not in SKIPPED_ROLES}
    # A person who is now a guardian (say) is removed: the portal no longer signs them in.
    removed = _removals(mode, state.people, active, (u.sid for u in rows))
    rekeyed = _rekeys(state, active, removed - skipped, orgs)
    if rekeyed:
        # From here on they are the people of their new sourcedIds, with their enrollments and
        # schools (apply.py writes the new sourcedIds first).
        plan.rekeys = {state.people[old][0]: new for old, new in rekeyed.items()}
        state.rekey_people(rekeyed)
        removed -= rekeyed.keys()
    plan.summary.rekeyed = len(rekeyed)
    plan.summary["people"].skipped = len(skipped)

    # Usernames of the people this import leaves alone.
    held = {} if mode == "bulk" else {
        canonical_username(row[3]): sid for sid, row in state.people.items()
        if sid not in active and sid not in removed}
    where_orgs = _where("orgs.csv", bundle.modes["orgs"])
    plan_rekeyed = set(rekeyed.values())
    changed_memberships = 0
    for sid, u in active.items():
        owner = held.get(u.username)
        if owner is not None:
            problems.add(f'users.csv line {u.line}: username "{u.username}" is already used by '
                         f'"{owner}" in the database (usernames are compared without regard to case)')
        schools = []
        district = None
        has_district = False
        for org in u.orgs:
            if org in orgs.districts.keys:
                has_district = True
                district = district or org
            elif org in orgs.schools:
                schools.append(org)
            elif org not in orgs.others:
                problems.add(_not_in("users.csv", u.line, "orgSourcedIds", org, where_orgs))
        if district is None:
            district = next((orgs.schools[s] for s in schools if orgs.schools[s]), None)
        existing = state.people.get(sid)
        changed = plan.people.compare(existing, sid, PERSON_COLUMNS, (
            _person_role(u, has_district), district, u.username, u.given_name, u.family_name,
            u.email, u.student_number, u.grades, u.enabled))
        wanted = frozenset(schools)
        had = state.person_schools.get(sid, frozenset()) - orgs.removed_schools
        if wanted != had:
            plan.memberships_added.extend((sid, s) for s in wanted - had)
            plan.memberships_removed.extend((sid, s) for s in had - wanted)
            if existing is not None and not changed:
                changed_memberships += 1
        elif existing is not None and not changed and sid in plan_rekeyed:
            changed_memberships += 1    # a new sourcedId alone: updated too
    # People this import does not list keep their row, but not a district that is gone, nor one
    # their schools all left: the admin pages scope people by district.
    for sid, existing in state.people.items():
        if sid in active or sid in removed:
            continue
        district = existing[2]
        schools = sorted(state.person_schools.get(sid, frozenset()) - orgs.removed_schools)
        theirs = [orgs.schools[s] for s in schools if orgs.schools.get(s)]
        # Only a district that came from their schools follows them: one their users.csv row
        # named itself (an admin of a district, teaching at a school of another) stays.
        came_from_schools = district in {state.schools[s][1] for s in schools if s in state.schools}
        if existing[1] == "district_admin":
            # Their row named the district (that is what made them its admin): it never follows
            # a school, and when it is removed they are admin of nothing.
            if district in orgs.districts.removed:
                plan.people.compare(existing, sid, PERSON_COLUMNS, (existing[1], None, *existing[3:]))
        elif district in orgs.districts.removed or (came_from_schools and district not in theirs):
            plan.people.compare(existing, sid, PERSON_COLUMNS,
                                (existing[1], theirs[0] if theirs else None, *existing[3:]))
    plan.people.deletes = [state.people[sid][0] for sid in removed]
    plan.summary.people_removed = sorted(state.people[sid][3] for sid in removed)
    plan.summary["people"].updated = changed_memberships  # plus the row updates, below
    return Known((state.people.keys() - removed) | active.keys(), removed), skipped


def _plan_enrollments(bundle: Bundle, state: State, plan: Plan, problems: Problems,
                      orgs: OrgIndex, sections: Sections, people: Known, skipped_people: set[str]):
    mode = bundle.modes["enrollments"]
    rows = bundle.rows["enrollments"] or []
    skipped = 0
    # Rows whose school is not their class's: the class's counts, as for access
    # (portal.models.roster.at_school); the summary names the first NAMED and counts the rest.
    school_of, other_school, other_school_rows = sections.school, 0, []
    active = {}
    where_users = _where("users.csv", bundle.modes["users"])
    where_classes = _where("classes.csv", bundle.modes["classes"])
    where_orgs = _where("orgs.csv", bundle.modes["orgs"])
    for e in rows:
        if e.deleted:
            continue
        if e.user_sid in skipped_people:
            skipped += 1
            continue
        active[e.sid] = e
        if e.user_sid not in people.keys:
            problems.add(_not_in("enrollments.csv", e.line, "userSourcedId", e.user_sid,
                                 where_users))
        if e.class_sid not in sections.keys:
            problems.add(_not_in("enrollments.csv", e.line, "classSourcedId", e.class_sid,
                                 where_classes))
        if e.school_sid not in orgs.schools:
            problems.add(f'enrollments.csv line {e.line}: schoolSourcedId "{e.school_sid}" is '
                         f"not a school in {where_orgs}")
        elif e.school_sid != school_of.get(e.class_sid, e.school_sid):
            other_school += 1
            if other_school <= NAMED:
                other_school_rows.append((e.line, e.class_sid, school_of[e.class_sid], e.school_sid))
        plan.enrollments.compare(state.enrollments.get(e.sid), e.sid, ENROLLMENT_COLUMNS,
                                 (e.user_sid, e.class_sid, e.role, e.primary))
    removed = _removals(mode, state.enrollments, active, (e.sid for e in rows))
    if people.removed or sections.removed:
        # An enrollment goes with its person or section.
        removed |= {sid for sid, row in state.enrollments.items()
                    if (row[1] in people.removed or row[2] in sections.removed)
                    and sid not in active}
    plan.enrollments.deletes = [state.enrollments[sid][0] for sid in removed]
    plan.summary["enrollments"].skipped = skipped
    plan.summary.other_school, plan.summary.other_school_rows = other_school, other_school_rows


def plan_import(bundle: Bundle, state: State) -> Plan:
    """Check the bundle's references against itself and the database, and plan the writes.

    Raises RosterError with every problem found (up to a limit); plans nothing in that case.
    """
    problems = Problems()
    plan = Plan()
    orgs = _plan_orgs(bundle, state, plan, problems)
    sections = _plan_sections(bundle, state, plan, problems, orgs)
    people, skipped_people = _plan_people(bundle, state, plan, problems, orgs)
    _plan_enrollments(bundle, state, plan, problems, orgs, sections, people, skipped_people)
    problems.raise_if_any()
    for kind in ("districts", "schools", "sections", "people", "enrollments"):
        changes: Changes = getattr(plan, kind)
        counts = plan.summary[kind]
        counts.created = len(changes.inserts)
        counts.updated += len(changes.updates)
        counts.removed = len(changes.deletes)
    return plan
