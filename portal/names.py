"""People's names as the portal stores them, shows them and sends them to apps: one rule for
each, used by the roster import, badges (portal.badges.sheets) and what apps receive
(portal.access) alike."""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import TypeVar


def tidy(text: str) -> str:
    """A name or title as the roster import stores it: composed (NFC: "Ñ" is one character, not
    N and a combining tilde, as a Mac's export may write it), each run of whitespace (a tab, a
    no-break space, a line break inside a quoted value) one space, and none at either end. ""
    when nothing visible is left: only invisible format characters (Unicode Cf: a zero-width
    space, a direction mark, a soft hyphen), which would be sent to apps as the name."""
    text = " ".join(text.split())
    if text.isascii():
        return text
    text = unicodedata.normalize("NFC", text)
    if _blank(text[0]) and all(c == " " or _blank(c) for c in text):
        return ""
    return text


# Characters that draw nothing though Unicode counts them as letters or marks (default ignorable,
# or blank by design): the Hangul fillers, the usual way to type a "blank" name (found by review:
# a name of U+3164 alone was stored and sent to apps), the combining grapheme joiner, Khmer's
# inherent vowels, Mongolian's variation selectors, the variation selectors, the Braille blank.
_BLANKS = frozenset([0x115F, 0x1160, 0x3164, 0xFFA0, 0x034F, 0x17B4, 0x17B5, *range(0x180B, 0x1810),
                     *range(0xFE00, 0xFE10), 0x2800])


def _blank(c: str) -> bool:
    """A character that shows nothing: a format character (Cf: a zero-width space, a direction
    mark, a soft hyphen) or one of _BLANKS."""
    return unicodedata.category(c) == "Cf" or ord(c) in _BLANKS


# Vowels written before the consonant they follow (Thai, Lao, Tai Viet, New Tai Lue): a name's
# initial is that consonant (ใจดี: จ).
WRITTEN_BEFORE = frozenset([*range(0x0E40, 0x0E45), *range(0x0EC0, 0x0EC5), 0x19B5, 0x19B6,
                             0x19B7, 0x19BA, 0xAAB5, 0xAAB6, 0xAAB9, 0xAABB, 0xAABC])
_MTAVRULI = range(0x1C90, 0x1CC0)   # Georgian capitals: not used in names, and few fonts have them


def family_initial(family: str) -> str:
    """The initial of a family name: its first letter (composed, NFC), with the accents that are
    part of it (Ấ) and a nukta, not a vowel sign, virama or vowel point; upper case where its
    script has one that is used (not Georgian's). "" when the name has no letter."""
    text = unicodedata.normalize("NFC", family)
    for n, c in enumerate(text):
        if not unicodedata.category(c).startswith("L") or ord(c) in WRITTEN_BEFORE or ord(c) in _BLANKS:
            continue
        marks = ""
        for mark in text[n + 1:]:
            if not unicodedata.category(mark).startswith("M"):
                break
            # Accents above, below and through a letter (classes 1, 200 and up), and a nukta (7).
            if unicodedata.combining(mark) in (1, 7) or unicodedata.combining(mark) >= 200:
                marks += mark
        upper = c.upper()
        if len(upper) != 1 or ord(upper) in _MTAVRULI:
            upper = c
        return unicodedata.normalize("NFC", upper + marks)
    return ""


# --- order -------------------------------------------------------------------------------------
# People in the order a teacher expects on a list: by family name, then given name, as a
# dictionary orders them, whatever the bytes. The database's own order is by code point (SQLite
# always; PostgreSQL under the C collation many installs use), which puts every accented or
# lower-case name after "Z": "Émile Été" after "Zimmerman", "de la Cruz" after "Young".

T = TypeVar("T")


# Letters a dictionary files under a Latin letter though Unicode does not decompose them into it
# (a stroke, a ligature, a dotless i): found by review, Vietnamese Đặng and Polish Łukasz sorted
# after Z.
_UNDECOMPOSED = str.maketrans({"đ": "d", "ð": "d", "ł": "l", "ŀ": "l", "ı": "i", "ħ": "h", "ŧ": "t",
                               "ø": "o", "æ": "ae", "œ": "oe", "þ": "th", "ƀ": "b", "ɨ": "i"})


def folded(text: str) -> str:
    """`text` as a dictionary compares it: without accents or case ("Ñúñez" -> "nunez", "Zoë" ->
    "zoe"), compatibility forms unified (full-width letters), and leading punctuation ignored
    ("'t Hooft" by its t)."""
    letters = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    folded = letters.casefold().translate(_UNDECOMPOSED)
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
