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
        return out
