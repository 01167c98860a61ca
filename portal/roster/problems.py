"""What a refused roster bundle reports: one plain line per problem, a bounded list, and which
check refused it."""
from __future__ import annotations

from typing import NamedTuple

MAX_PROBLEMS = 20


class Refusal(NamedTuple):
    """Why an import was refused, as the audit log and the admin's home page say it (never a
    problem's own line: those name people), and what the district does about it."""
    words: str
    advice: str


_AGAIN = "if they really left, import again with --allow-removals"

# The checks that refuse a bundle, by the code a RosterError carries.
UNREADABLE, NOT_UTF8, GARBLED, PROBLEMS = "unreadable", "not_utf8", "garbled", "problems"
REMOVES_MANY, REMOVES_HELD, REMOVES_ASKED, REDIS_AWAY = "removes_many", "removes_held", "removes_asked", "redis_away"
REDIS_PASSWORD = "redis_password"
REFUSALS = {
    UNREADABLE: Refusal("the roster could not be read: a file is missing or damaged, or it is not a "
                        "OneRoster bundle", "check that the export reached the server whole, or export "
                        "the roster again"),
    NOT_UTF8: Refusal("a file is not UTF-8 text", "export the roster again as UTF-8"),
    GARBLED: Refusal("a file's accented letters are garbled, as Excel leaves a CSV file it opened and saved",
                     "export the roster again from the student information system and import it "
                     "without opening it in Excel"),
    PROBLEMS: Refusal("rows or columns with problems (a missing column, a bad value, or an id another "
                      "file does not have)", "fix them in the student information system and export again"),
    REMOVES_MANY: Refusal("it would remove more than a quarter of the people, as an export that lost "
                          "its rows would", "check users.csv in the export; if the removals are right, "
                          "import again with --allow-removals"),
    REMOVES_HELD: Refusal("it would remove people on security hold",
                     f"lift their holds first, or {_AGAIN}"),
    REMOVES_ASKED: Refusal("it would remove people with a deletion request their app's vendor has not "
                            "confirmed", f"record the vendor's answer first, or {_AGAIN}"),
    REDIS_AWAY: Refusal("Redis (the session store) could not be reached while it removed, disabled or "
                        "moved people", "start Redis and import again"),
    REDIS_PASSWORD: Refusal("Redis (the session store) refused the portal's password while it removed, "
                            "disabled or moved people", "set the password Redis expects in "
                            "PORTAL_REDIS_URL and import again"),
}


class RosterError(Exception):
    """The bundle was refused and nothing was written; `problems` says why, one line each, and
    `reasons` which checks refused it (codes of REFUSALS). `stopped`: the checking stopped at
    MAX_PROBLEMS, and the last line says so."""

    def __init__(self, problems: list[str], *reasons: str, stopped: bool = False):
        self.problems = list(problems)
        self.reasons = tuple(dict.fromkeys(reasons)) or (PROBLEMS,)
        self.stopped = stopped
        super().__init__("\n".join(self.problems))

    @property
    def counted(self) -> int:
        """How many problems the lines name (the line saying the checking stopped is none)."""
        return len(self.problems) - (1 if self.stopped else 0)


class Problems:
    """Collects problems while a bundle is checked, and gives up once there are enough to fix."""

    def __init__(self, limit: int = MAX_PROBLEMS):
        self.limit = limit
        self.items: list[str] = []
        self.reasons: dict[str, None] = {}   # in the order found

    def add(self, message: str, reason: str = PROBLEMS) -> None:
        self.items.append(message)
        self.reasons[reason] = None
        if len(self.items) >= self.limit:
            raise RosterError(self.items + [
                f"(stopped after {self.limit} problems: fix these and import again)"],
                *self.reasons, stopped=True)

    def take(self, error: RosterError) -> None:
        """Add the problems of a refusal met on the way (one file's), with its reasons."""
        self.reasons.update(dict.fromkeys(error.reasons))
        for message in error.problems:
            self.add(message, error.reasons[0])

    def raise_if_any(self) -> None:
        if self.items:
            raise RosterError(self.items, *self.reasons)

    def __bool__(self) -> bool:
        return bool(self.items)
