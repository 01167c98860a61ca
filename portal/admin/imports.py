"""The roster's imports as the district admin's home page tells them: the latest that went
through, with what it did, and the latest refused when none has gone through since, read back
from their audit events (portal.roster.record)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, union_all
from sqlalchemy.orm import Session

from portal.models import Event
from portal.roster.problems import REFUSALS, Refusal
from portal.roster.record import IMPORTED, REFUSED

# What an import did, as the page says it: the kinds and counts of its record ("people_added",
# portal.roster.record.counts) in this order, and one of each kind.
_SAID = ("people", "classes", "enrollments", "schools", "districts")
_ONE = {"people": "person", "classes": "class", "enrollments": "enrollment", "schools": "school",
        "districts": "district"}
_VERBS = ("added", "changed", "removed", "rekeyed", "skipped")
_VERB_WORDS = {"rekeyed": "re-keyed"}


@dataclass(frozen=True)
class ImportRecord:
    at: datetime
    bundle: str
    mode: str                    # "full", "delta", "full and delta"; "" when it was never read
    did: str                     # "7 people added, 1 skipped; 2 classes added", "nothing changed"
    problems: int                # of a refusal: how many its checks found
    more_problems: bool          # ... and they stopped there, finding more
    refusals: list[Refusal]      # ... and which checks refused it


@dataclass(frozen=True)
class RosterImports:
    accepted: ImportRecord | None    # the latest import that went through
    refused: ImportRecord | None     # the latest attempt, when it was refused


def _latest(kind: str, district_id: int):
    # The district's own events, and those naming none (an import is the whole portal's), along
    # ix_audit_event_no_one_kind_at: the few events by no one about no one, of the kind, newest first.
    district = Event.data["district_id"].as_integer()
    return (select(Event.id)
            .where(Event.kind == kind, Event.person_id.is_(None), Event.actor_id.is_(None),
                   or_(district == district_id, district.is_(None)))
            .order_by(Event.at.desc(), Event.id.desc()).limit(1))


def latest_imports(db: Session, district_id: int | None) -> RosterImports:
    """The latest roster import of the district that went through, and the latest refused, if no
    import has gone through since: one statement."""
    if district_id is None:
        return RosterImports(None, None)
    # Each part a subquery of its own: SQLite takes no ORDER BY or LIMIT inside a bare UNION.
    latest = union_all(*(select(_latest(kind, district_id).subquery()) for kind in (IMPORTED, REFUSED))).subquery()
    found = {event.kind: event for event in db.scalars(select(Event).join(latest, latest.c.id == Event.id))}
    accepted, refused = found.get(IMPORTED), found.get(REFUSED)
    if accepted is not None and refused is not None and (accepted.at, accepted.id) > (refused.at, refused.id):
        refused = None
    return RosterImports(_record(accepted), _record(refused))


def _count(data: dict, key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _did(data: dict) -> str:
    """What the import did, in words: per kind, its counts ("7 people added, 1 removed")."""
    parts = []
    for kind in _SAID:
        counted = [(count, _VERB_WORDS.get(verb, verb)) for verb in _VERBS
                   if (count := _count(data, f"{kind}_{verb}"))]
        if counted:
            (first, verb), rest = counted[0], counted[1:]
            noun = _ONE[kind] if first == 1 else kind
            parts.append(", ".join([f"{first:,} {noun} {verb}", *(f"{n:,} {v}" for n, v in rest)]))
    return "; ".join(parts) or "nothing changed"


def _record(event: Event | None) -> ImportRecord | None:
    """An import's event as the page tells it (read back, never trusted to be well formed)."""
    if event is None:
        return None
    data = event.data if isinstance(event.data, dict) else {}
    codes = data.get("refusals")
    return ImportRecord(
        at=event.at, bundle=str(data.get("bundle") or ""), mode=str(data.get("mode") or ""), did=_did(data),
        problems=_count(data, "problems"), more_problems=data.get("more_problems") is True,
        refusals=[REFUSALS[code] for code in codes if isinstance(code, str) and code in REFUSALS]
        if isinstance(codes, list) else [])
