"""People in the order a teacher expects on a list: by family name, then given name, as a
dictionary orders them, whatever the bytes. The database's own order is by code point (SQLite
always; PostgreSQL under the C collation many installs use), which puts every accented or
lower-case name after "Z": "Émile Été" after "Zimmerman", "de la Cruz" after "Young", and an
"Ñúñez" typed composed apart from one exported decomposed."""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def folded(text: str) -> str:
    """`text` as a dictionary compares it: without accents or case ("Ñúñez" -> "nunez", "Zoë" ->
    "zoe"), compatibility forms unified (full-width letters), and leading punctuation ignored
    ("'t Hooft" by its t)."""
    letters = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    folded = letters.casefold()
    start = next((i for i, c in enumerate(folded) if c.isalnum()), len(folded))
    return folded[start:]


def name_key(person) -> tuple:
    """Sort key of a person by name: folded family, then given name, then the names as written
    (so "Zoe" and "Zoë" keep one order), then the id (two people of one name keep theirs).
    Someone with one name, which the roster gave as a given name, is sorted by it, not first of
    all as if their family name were ""."""
    family = person.family_name or person.given_name
    return (folded(family), folded(person.given_name),
            unicodedata.normalize("NFC", family), unicodedata.normalize("NFC", person.given_name),
            person.id)


def by_name(people: Iterable[T]) -> list[T]:
    """The people (anything with family_name, given_name and id) in name order."""
    return sorted(people, key=name_key)


def by_word(items: Iterable[T], attribute: str = "name") -> list[T]:
    """Apps, schools or classes in dictionary order of one name (`attribute`): "iReady" among the
    I's, not after "Zearn"."""
    def key(item):
        text = getattr(item, attribute)
        return folded(text), unicodedata.normalize("NFC", text), item.id
    return sorted(items, key=key)
