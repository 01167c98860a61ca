"""What a refused roster bundle reports: one plain line per problem, a bounded list."""
from __future__ import annotations

MAX_PROBLEMS = 20


class RosterError(Exception):
    """The bundle was refused and nothing was written; `problems` says why, one line each."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class Problems:
    """Collects problems while a bundle is checked, and gives up once there are enough to fix."""

    def __init__(self, limit: int = MAX_PROBLEMS):
        self.limit = limit
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)
        if len(self.items) >= self.limit:
            raise RosterError(self.items + [
                f"(stopped after {self.limit} problems: fix these and import again)"])

    def raise_if_any(self) -> None:
        if self.items:
            raise RosterError(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)
