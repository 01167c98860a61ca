"""What the audit log keeps of each roster import: one event, accepted or refused, about no one
and by no one (the command line), read back by the district admin's home page and the audit log
(portal.admin.imports, portal.admin.shared).

Counts and the bundle's file name only, never a name, username or row: a refusal's problems name
people and rows, so its event says how many there were and which checks refused it, in REFUSALS'
words (the import run again lists them). A roster is the whole portal's (a bulk file removes what
it does not carry), so the event names the portal's district when it has one; with none yet, or
several, it names none, and every district's log shows it.
"""
from __future__ import annotations

import logging
from contextlib import suppress
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from portal import audit
from portal.admin.services import only_district
from portal.roster.problems import REFUSALS, RosterError
from portal.roster.summary import ImportSummary

IMPORTED, REFUSED = "roster_imported", "roster_refused"
ROSTER_KINDS = (IMPORTED, REFUSED)

# The summary's kinds and counts as the record names them ("people_added", "classes_removed").
KIND_WORDS = {"districts": "districts", "schools": "schools", "sections": "classes", "people": "people",
              "enrollments": "enrollments"}
COUNT_WORDS = {"created": "added", "updated": "changed", "removed": "removed", "skipped": "skipped"}
MAX_NAME = 120

log = logging.getLogger(__name__)


def bundle_name(path) -> str:
    """The bundle's file or folder name as its record keeps it: one line of at most MAX_NAME
    characters (the folders above it say nothing to a district admin)."""
    try:
        name = Path(path).absolute().name or str(path)
    except (OSError, ValueError):   # no current folder any more; a NUL in the path
        name = str(path)
    return "".join(c if c.isprintable() else "?" for c in name)[:MAX_NAME]


class Attempt:
    """What an import knows of its bundle for the record: its name, and, once the manifest has
    been read, whether it is a full roster or a delta."""

    def __init__(self, path, *, allow_removals: bool = False):
        self.bundle = bundle_name(path)
        self.allow_removals = allow_removals
        self.mode: str | None = None

    def read(self, modes: dict[str, str]) -> None:
        given = {mode for mode in modes.values() if mode != "absent"}
        self.mode = ("full" if given == {"bulk"} else "delta" if given == {"delta"}
                     else "full and delta" if given else None)

    def data(self, db: Session) -> dict:
        district = only_district(db)
        data = {"district_id": district} if district is not None else {}
        data["bundle"] = self.bundle
        if self.mode:
            data["mode"] = self.mode
        if self.allow_removals:
            data["removals_allowed"] = True
        return data


def counts(summary: ImportSummary) -> dict[str, int]:
    """What the import did, as counts (those that are not 0): never who."""
    found = {}
    for kind, count in summary.counts.items():
        for field, verb in COUNT_WORDS.items():
            if getattr(count, field):
                found[f"{KIND_WORDS[kind]}_{verb}"] = getattr(count, field)
    if summary.rekeyed:
        found["people_rekeyed"] = summary.rekeyed
    if summary.other_school:
        found["enrollments_at_another_school"] = summary.other_school
    return found


def record_imported(db: Session, attempt: Attempt, summary: ImportSummary) -> None:
    """Record the import in its own transaction, before it commits: both or neither."""
    audit.record(IMPORTED, data={**attempt.data(db), **counts(summary)}, commit=False)


def record_refused(db: Session, attempt: Attempt, error: RosterError) -> None:
    """Record a refusal in a commit of its own, after a rollback of whatever the session holds
    (the import's transaction, if it got that far): a refusal changes nothing else. Failing to
    (the database itself away) is logged: the refusal is what the caller reports."""
    reasons = [reason for reason in error.reasons if reason in REFUSALS]
    try:
        db.rollback()
        data = {**attempt.data(db), "problems": error.counted,
                "refused_by": "; ".join(REFUSALS[reason].words for reason in reasons), "refusals": reasons}
        if error.stopped:
            data["more_problems"] = True
        audit.record(REFUSED, data=data)
    except SQLAlchemyError as e:
        log.warning("roster import refused, and the refusal could not be recorded in the audit log: %s",
                    type(e).__name__)
        with suppress(SQLAlchemyError):
            db.rollback()
