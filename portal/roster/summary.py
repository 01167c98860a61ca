"""What an import did, per kind of row: created, updated, removed, skipped."""
from __future__ import annotations

from dataclasses import dataclass, field

from portal.badges import plural

KINDS = ("districts", "schools", "sections", "people", "enrollments")


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    removed: int = 0
    skipped: int = 0


@dataclass
class ImportSummary:
    counts: dict[str, Counts] = field(default_factory=lambda: {k: Counts() for k in KINDS})
    # People kept under a new sourcedId (same username and role); counted as updated too
    rekeyed: int = 0
    # Usernames (sorted) of enabled teachers and students in classes at a school their own row
    # does not name: such a class is not theirs, nor they its (portal.badges.permissions)
    teachers_elsewhere: list[str] = field(default_factory=list)
    students_elsewhere: list[str] = field(default_factory=list)
    # Usernames (sorted) of the people the import removes, so whoever runs it can check them
    people_removed: list[str] = field(default_factory=list)
    # Enrollments whose schoolSourcedId is not their class's school, which is the one that counts:
    # how many, and the first NAMED as (line, class, the class's school, the row's school)
    other_school: int = 0
    other_school_rows: list[tuple[int, str, str, str]] = field(default_factory=list)

    def __getitem__(self, kind: str) -> Counts:
        return self.counts[kind]

    @property
    def changed(self) -> bool:
        return any(c.created or c.updated or c.removed for c in self.counts.values())

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {k: vars(c).copy() for k, c in self.counts.items()}

    def lines(self) -> list[str]:
        """The summary as a small table, one kind per line."""
        out = [f"{'':12} {'created':>8} {'updated':>8} {'removed':>8} {'skipped':>8}"]
        for kind, c in self.counts.items():
            out.append(f"{kind:12} {c.created:8} {c.updated:8} {c.removed:8} {c.skipped:8}")
        if self.rekeyed:
            out.append(f"{plural(self.rekeyed, 'person', 'people')} re-keyed: a new sourcedId with the "
                       "same username and role, so kept (with their hold, opt-outs, badges and records)")
        if not self.changed:
            out.append("nothing changed: the database already matched the roster")
        if self.people_removed:
            out.append(f"removed: {plural(len(self.people_removed), 'person', 'people')} "
                       f"({some_names(self.people_removed)}): they can no longer sign in")
        if self.teachers_elsewhere:
            out.append(f"note: {_some(self.teachers_elsewhere, 'teacher', 'teaches')} classes at a "
                       "school their users.csv row does not name (orgSourcedIds): they cannot see or "
                       "act on those classes until it names the school")
        if self.students_elsewhere:
            out.append(f"note: {_some(self.students_elsewhere, 'student', 'is')} in classes at a "
                       "school their users.csv row does not name (orgSourcedIds): those classes' "
                       "teachers cannot see or act for them until it names the school")
        if self.other_school:
            out += self._other_school_lines()
        return out

    def _other_school_lines(self) -> list[str]:
        many = self.other_school != 1
        out = [f"note: {plural(self.other_school, 'enrollment', 'enrollments')} in enrollments.csv "
               f"{'name' if many else 'names'} a school (schoolSourcedId) that is not "
               f"{'their' if many else 'its'} class's: the portal goes by the class's school (a "
               "class's apps and teachers reach a student only at a school their users.csv row "
               f"names); fix {'them' if many else 'it'} in the student information system:"]
        out += [f'  enrollments.csv line {line}: schoolSourcedId "{named}", but class "{section}" '
                f'is at school "{school}"' for line, section, school, named in self.other_school_rows]
        if self.other_school > len(self.other_school_rows):
            out.append(f"  and {self.other_school - len(self.other_school_rows)} more")
        return out


# How many people a summary or a refusal names, by username.
NAMED = 10

_PLURAL_VERBS = {"teaches": "teach", "is": "are"}


def some_names(usernames: list[str]) -> str:
    """'a, b, c': the first NAMED usernames, and how many more."""
    more = len(usernames) - NAMED
    return ", ".join(usernames[:NAMED]) + (f" and {more} more" if more > 0 else "")


def _some(usernames: list[str], noun: str, verb: str) -> str:
    """'2 teachers (ann, bob) teach'."""
    many = len(usernames) != 1
    return (f"{plural(len(usernames), noun, noun + 's')} ({some_names(usernames)}) "
            f"{_PLURAL_VERBS[verb] if many else verb}")
