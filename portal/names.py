"""People's names as the portal stores them, shows them and sends them to apps: one rule for
each, used by the roster import, badges (portal.badges.sheets) and what apps receive
(portal.access) alike."""
from __future__ import annotations

import unicodedata


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
    if unicodedata.category(text[0]) == "Cf" and all(
            c == " " or unicodedata.category(c) == "Cf" for c in text):
        return ""
    return text


# Vowels written before the consonant they follow (Thai, Lao, Tai Viet, New Tai Lue): a name's
# initial is that consonant (ใจดี: จ).
_WRITTEN_BEFORE = frozenset([*range(0x0E40, 0x0E45), *range(0x0EC0, 0x0EC5), 0x19B5, 0x19B6,
                             0x19B7, 0x19BA, 0xAAB5, 0xAAB6, 0xAAB9, 0xAABB, 0xAABC])
_MTAVRULI = range(0x1C90, 0x1CC0)   # Georgian capitals: not used in names, and few fonts have them


def family_initial(family: str) -> str:
    """The initial of a family name: its first letter (composed, NFC), with the accents that are
    part of it (Ấ) and a nukta, not a vowel sign, virama or vowel point; upper case where its
    script has one that is used (not Georgian's). "" when the name has no letter."""
    text = unicodedata.normalize("NFC", family)
    for n, c in enumerate(text):
        if not unicodedata.category(c).startswith("L") or ord(c) in _WRITTEN_BEFORE:
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
