"""Counting the SQL statements a piece of work sends, for tests that its count does not grow
with the number of rows it reads or writes."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import event


@contextmanager
def statements(engine) -> Iterator[list[str]]:
    """The statements `engine` runs inside the block, in order (an executemany counts once)."""
    found: list[str] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        found.append(statement)

    event.listen(engine, "before_cursor_execute", grab)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", grab)
