"""Open a OneRoster 1.1 CSV bundle (a folder or a .zip) and read its files as rows of text.

Only the layer that turns bytes into rows lives here: where the files are, what manifest.csv
says about each, UTF-8 (with or without a byte-order mark, and not garbled by a trip through
Windows-1252) and the header line. What the values mean is parse.py's business.
"""
from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from operator import itemgetter
from pathlib import Path, PurePosixPath

from portal.roster.problems import GARBLED, NOT_UTF8, UNREADABLE, Problems, RosterError

# The files the portal reads, by the manifest's name for them (file.<name>).
FILES = ("academicSessions", "orgs", "courses", "classes", "users", "enrollments")
MODES = ("bulk", "delta", "absent")
MANIFEST = "manifest.csv"

# The most one file may hold, unpacked. A district of a million students exports well under it;
# a zip bomb (a small zip that unpacks to hundreds of gigabytes) is refused before it is read.
MAX_FILE_BYTES = 2 << 30

# Characters no value the portal reads may hold: C0 controls and DEL. A tab is whitespace a
# spreadsheet's copy and paste leaves in a title, so it passes; a line break (legitimate in a
# free-text column the portal ignores) does not pass in the columns it reads that hold one line:
# ids, usernames, codes. In a name or title (the `spaced` columns of table()) a line break
# inside a quoted value is whitespace, which the importer makes a space (portal.names.tidy).
# NUL cannot even be stored on PostgreSQL.
# U+FFFE and U+FFFF are no characters at all (a UTF-16 export read the wrong way round leaves
# them): XML cannot carry them, so a SAML app could not be told the name. The invisible
# direction overrides and isolates (U+202A-202E, U+2066-2069) make a name display as another
# ("Ada" that reads "adA" on a teacher's page, a username that looks like someone else's), and a
# byte order mark inside a value (U+FEFF; one at the start of a file is fine) is invisible too.
_INVISIBLE = "\x7f\u202a-\u202e\u2066-\u2069\ufeff\ufffe\uffff"
_CONTROL_IN_CELL = re.compile(f"[\x00-\x08\x0a-\x1f{_INVISIBLE}]")
_CONTROL_IN_SPACED = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f{_INVISIBLE}]")   # less \n and \r
# The same, less the line breaks that end rows: if a file has none of these, only a line break
# inside a quoted value can be there, and a row that spans lines shows it. Looked for one by
# one with `in`, three times as fast as the pattern over a file of half a million rows.
_CONTROLS_IN_TEXT = tuple(map(chr, (*range(0x09), 0x0b, 0x0c, *range(0x0e, 0x20), 0x7f,
                                     *range(0x202a, 0x202f), *range(0x2066, 0x206a), 0xfeff,
                                     0xfffe, 0xffff)))
_CONTROL_NAMES = {"\x00": "a NUL", "\n": "a line break", "\r": "a line break",
                  "\ufffe": "a character that is not text", "\uffff": "a character that is not text",
                  "\ufeff": "an invisible byte order mark",
                  **{chr(c): "an invisible text-direction mark" for c in (*range(0x202a, 0x202f), *range(0x2066, 0x206a))}}

# Grow the csv module's field limit: a class with many term or grade codes is still one field.
csv.field_size_limit(1 << 24)


def _windows_1252() -> dict[str, int]:
    """The character Windows-1252 reads each byte 0x80-0xFF as -> that byte. The five bytes it
    leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) Windows reads as the C1 control of the same
    number, as ISO-8859-1 reads all of 0x80-0x9F: those are here too."""
    table = {chr(byte): byte for byte in range(0x80, 0x100)}
    for byte in range(0x80, 0xA0):
        char = bytes([byte]).decode("cp1252", errors="ignore")
        if char:
            table[char] = byte
    return table


# UTF-8 text read as Windows-1252 and saved again, as Excel does with a CSV file opened by
# double-clicking it and saved as "CSV UTF-8": "é" (bytes C3 A9) comes back as "Ã©". Each such
# sequence is a UTF-8 lead byte read as Windows-1252 (U+00C2-U+00F4, in UTF-8 C3 82-C3 B4), then
# one, two or three continuation bytes read the same way: U+0080-U+00BF ("©", "±", a no-break
# space) or a cp1252 special ("€", "™", "š", "‰", ...), and the bytes read are UTF-8 for one
# character. _GARBLED_HINT finds candidates as fast as a byte scan; _GARBLED is tried only there.
# Real names do not hold these ("João", "Ângela", "Çelik", "Ñúñez": no such character after the
# accented letter). A capital before a spreadsheet's no-break space ("JOSÉ", "ZOË", "SZABÓ")
# would read as a letter too (É NBSP: C9 A0, "ɠ"), so a no-break space counts only after "Â"
# (a garbled no-break space) and "Ã" (a garbled "à").
_CP1252 = _windows_1252()
_SPECIALS = sorted(char.encode() for char, byte in _CP1252.items() if byte < 0xA0 and char > "\xff")
_FOLLOW = b"(?:\xc2[\x80-\xbf]|" + b"|".join(map(re.escape, _SPECIALS)) + b")"
_FOLLOW_NOT_NBSP = b"(?:\xc2[\x80-\x9f\xa1-\xbf]|" + b"|".join(map(re.escape, _SPECIALS)) + b")"
_GARBLED = re.compile(b"\xc3(?:[\x82\x83]" + _FOLLOW + b"|[\x84-\x9f]" + _FOLLOW_NOT_NBSP
                      + b"|[\xa0-\xaf]" + _FOLLOW + b"{2}|[\xb0-\xb4]" + _FOLLOW + b"{3})")
_GARBLED_HINT = re.compile(b"\xc3[\x82-\xb4]["
                           + re.escape(bytes(sorted({0xC2, *(s[0] for s in _SPECIALS)}))) + b"]")


class Source:
    """Where the bundle's files are: a folder, or the folder inside a zip that holds manifest.csv."""

    def __init__(self, path: Path):
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._members: dict[str, str] = {}
        try:
            exists, folder = path.exists(), path.is_dir()
        except OSError as e:   # a name too long for the file system, a folder we may not enter
            raise RosterError([f"{path}: cannot be read ({e.strerror})"], UNREADABLE) from None
        if not exists:
            raise RosterError([f"{path}: there is no such file or folder"], UNREADABLE)
        if folder:
            return
        if not path.is_file():  # reading a pipe would wait for a writer, a device never ends
            raise RosterError([f"{path}: not a folder or a .zip file (a device or a pipe); "
                               f"export the roster again"], UNREADABLE)
        try:
            self._zip = zipfile.ZipFile(path)
            names = [n for n in self._zip.namelist() if not n.endswith("/")]
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            kind = "a valid zip file" if path.suffix.lower() == ".zip" else "a folder or a .zip file"
            raise RosterError([f"{path.name}: not {kind} ({e}); export the roster again"], UNREADABLE) from None
        # A bundle may be zipped with its files at the top or inside one folder.
        manifests = sorted((n for n in names if PurePosixPath(n).name == MANIFEST),
                           key=lambda n: n.count("/"))
        prefix = str(PurePosixPath(manifests[0]).parent) + "/" if manifests else ""
        prefix = "" if prefix == "./" else prefix
        for name in names:
            if name.startswith(prefix) and "/" not in name[len(prefix):]:
                self._members[name[len(prefix):]] = name

    def has(self, filename: str) -> bool:
        if self._zip is not None:
            return filename in self._members
        return (self.path / filename).is_file()

    def read(self, filename: str) -> bytes:
        try:
            size = self.size(filename)
            if size > MAX_FILE_BYTES:
                where = "unzipped " if self._zip is not None else ""
                raise RosterError([f"{filename}: {_amount(size)} {where}is more than a roster file "
                                   f"may hold ({_amount(MAX_FILE_BYTES)}); check that this is the "
                                   "district's export"], UNREADABLE)
            if self._zip is not None:
                return self._read_member(filename)
            return (self.path / filename).read_bytes()
        except (OSError, zipfile.BadZipFile, EOFError, KeyError) as e:
            raise RosterError([f"{filename}: could not be read ({e})"], UNREADABLE) from None

    def _read_member(self, filename: str) -> bytes:
        info = self._zip.getinfo(self._members[filename])
        if info.flag_bits & 0x1:  # encrypted: zipfile would ask for the password
            raise RosterError([f"{filename}: the zip is password-protected: export it again "
                               "without a password"], UNREADABLE)
        try:
            return self._zip.read(info)
        except (NotImplementedError, RuntimeError):
            # RuntimeError: a method this Python was built without (bz2, lzma).
            method = zipfile.compressor_names.get(info.compress_type,
                                                  f"method {info.compress_type}")
            raise RosterError([f"{filename}: the zip uses a compression method this importer "
                               f"cannot read: {method}; zip it again with the usual method "
                               "(deflate), or import the unzipped folder"], UNREADABLE) from None

    def size(self, filename: str) -> int:
        if self._zip is not None:
            return self._zip.getinfo(self._members[filename]).file_size
        return (self.path / filename).stat().st_size

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _amount(size: int) -> str:
    return f"{size / (1 << 30):.1f} GiB" if size >= 1 << 30 else f"{size / (1 << 20):.0f} MiB"


def decode(filename: str, data: bytes) -> str:
    """Return the file's text; refuse bytes that are not UTF-8, and UTF-8 text that was read as
    Windows-1252 and saved again (see _GARBLED), naming the line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise RosterError([f"{filename} line {line}: the file is not UTF-8 text; "
                           "save it as UTF-8 and import again"], NOT_UTF8) from None
    if not data.isascii():
        _refuse_garbled(filename, data)
    return text


def _refuse_garbled(filename: str, data: bytes) -> None:
    """Refuse the file at its first garbled character, showing it and the letter it stands for
    (a fragment of a value, never the value: rows are named by line)."""
    for hint in _GARBLED_HINT.finditer(data):
        match = _GARBLED.match(data, hint.start())
        if match is None:
            continue
        seen = match.group().decode("utf-8")
        try:
            meant = bytes(_CP1252[char] for char in seen).decode("utf-8")
        except UnicodeDecodeError:
            continue
        cell = _cell_meant(data, match.start(), match.end())
        if cell is None or not _plausible(cell):
            continue
        line = data.count(b"\n", 0, match.start()) + 1
        raise RosterError([
            f"{filename} line {line}: {_shown(seen)} where {_shown(meant)} was meant: the file's "
            "UTF-8 text was read as Windows-1252 and saved again (as Excel does with a CSV file "
            "opened by double-clicking it), which garbles every accented letter, and names would "
            "be stored and sent to apps that way; export the roster again from the student "
            "information system, or in Excel open the export with Data > From Text/CSV, File "
            'Origin "65001: Unicode (UTF-8)", and save it as CSV UTF-8'], GARBLED)


_CELL_END = re.compile(rb'[,\r\n"]')


def _cell_meant(data: bytes, start: int, end: int) -> str | None:
    """What the whole cell around data[start:end] stood for before it was garbled, or None when it
    cannot have been: a garbled cell holds only ASCII and characters Windows-1252 reads from a
    byte, and those bytes are UTF-8 ("KŘÍŽ" has an Ř, which no byte reads as; "«\u00a0Café\u00a0»"
    gives a lone continuation byte). Found by review: a check of the match alone refused real
    Czech, French and upper-case names."""
    before = max(data.rfind(b",", 0, start), data.rfind(b"\n", 0, start), data.rfind(b'"', 0, start)) + 1
    after = _CELL_END.search(data, end)
    cell = data[before:after.start() if after else len(data)].decode("utf-8").lstrip("\ufeff")
    try:
        return bytes(ord(c) if c.isascii() else _CP1252[c] for c in cell).decode("utf-8")
    except (KeyError, UnicodeDecodeError):
        return None


def _plausible(meant: str) -> bool:
    """Whether a cell's meaning before garbling is text a roster holds: no letter of Latin
    Extended-B, IPA or spacing modifier, and no rare combining mark (what typography after a
    capital stands for: "É–" for "ɖ", "Ë”" for "˔", "É…" for "Ʌ"), and no CJK or Hangul character
    beside Latin letters (an accented letter before two no-break spaces stands for one:
    "é\u00a0\u00a0" for "頀"; a garbled Chinese name stands for Chinese alone)."""
    if any(0x180 <= ord(c) <= 0x2FF or 0x334 <= ord(c) <= 0x36F for c in meant):
        return False
    return not (any(0x2E80 <= ord(c) <= 0xD7FF or 0xF900 <= ord(c) <= 0xFAFF for c in meant)
                and any(c.isascii() and c.isalpha() for c in meant))


def _shown(text: str) -> str:
    """Characters for a message: visible ones in quotes, the others as code points with their
    name ('"Ã" U+00AD (soft hyphen)')."""
    parts: list[str] = []
    for char in text:
        if char.isprintable() and not char.isspace() and not unicodedata.category(char).startswith("M"):
            if parts and parts[-1].startswith('"'):
                parts[-1] = parts[-1][:-1] + char + '"'
            else:
                parts.append(f'"{char}"')
        else:
            name = unicodedata.name(char, "")
            parts.append(f"U+{ord(char):04X} ({name.lower()})" if name else f"U+{ord(char):04X}")
    return " ".join(parts)


def read_manifest(source: Source) -> dict[str, str]:
    """Return how each file is to be processed: bulk, delta or absent."""
    if not source.has(MANIFEST):
        raise RosterError([f"{MANIFEST} is missing: a OneRoster 1.1 bundle starts with it"], UNREADABLE)
    problems = Problems()
    properties: dict[str, str] = {}
    for line, (name, value) in table(MANIFEST, decode(MANIFEST, source.read(MANIFEST)),
                                     ("propertyName", "value"), (), problems):
        properties[name] = value
    problems.raise_if_any()

    modes: dict[str, str] = {}
    for name in FILES:
        filename = f"{name}.csv"
        mode = properties.get(f"file.{name}", "").lower()
        if not mode:
            if source.has(filename):
                problems.add(f"{MANIFEST}: no file.{name} entry says how to read {filename} "
                             "(bulk, delta or absent)")
            mode = "absent"
        elif mode not in MODES:
            problems.add(f"{MANIFEST}: file.{name} is {mode!r}; it must be bulk, delta or absent")
            continue
        elif mode != "absent" and not source.has(filename):
            problems.add(f"{filename} is missing ({MANIFEST} says file.{name} is {mode})", UNREADABLE)
        modes[name] = mode
    problems.raise_if_any()
    return modes


def table(filename: str, text: str, required: tuple[str, ...], optional: tuple[str, ...],
          problems: Problems, spaced: tuple[str, ...] = ()) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, values) with the named columns in the order asked, whitespace trimmed.

    Columns may come in any order and extra columns are ignored; a missing optional column
    reads as "". Header names are matched without regard to case. The line is where the row
    starts. A row whose every value is empty is skipped; one with values only in columns not
    asked for is refused, naming those columns (it is not blank, and none of its values is read).
    A value holding a control character (see _CONTROL_IN_CELL) is refused, naming it; in the
    `spaced` columns a line break passes, for the caller to make a space.
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as e:
        problems.add(f"{filename} line 1: {_csv_error(e)}")
        return
    if not header or not any(h.strip() for h in header):
        problems.add(f"{filename} line 1: the file is empty; it needs a header line")
        return
    position: dict[str, int] = {}
    for i, name in enumerate(header):
        position.setdefault(name.strip().lower(), i)
    missing = [c for c in required if c.lower() not in position]
    separator = _other_separator(text, required) if missing else None
    if separator:
        problems.add(f"{filename} line 1: the columns are separated by {separator}, not commas "
                     "(as Excel saves \"CSV\" in some languages); save the file as comma-separated "
                     "CSV (UTF-8) and import again")
        return
    if missing:
        names = ", ".join(f'"{c}"' for c in missing)
        problems.add(f"{filename} line 1: missing column{'s' if len(missing) > 1 else ''} {names}")
        return
    # A missing optional column points at the "" appended to every row below.
    indexes = [position.get(c.lower(), -1) for c in required + optional]
    pick = itemgetter(*indexes) if len(indexes) > 1 else lambda row: (row[indexes[0]],)
    needed = max(indexes) + 1
    strip = str.strip
    columns = required + optional
    checks = [(column, _CONTROL_IN_SPACED if column in spaced else _CONTROL_IN_CELL)
              for column in columns]
    controls_anywhere = any(c in text for c in _CONTROLS_IN_TEXT)
    end = reader.line_num
    for row in _readable(reader, filename, problems):
        line, end = end + 1, reader.line_num
        if len(row) < needed:
            if _blank(row):
                continue
            problems.add(f"{filename} line {line}: {len(row)} values, but the header "
                         f"line has {len(header)} columns")
            continue
        row.append("")
        values = list(map(strip, pick(row)))
        if not any(values):     # the cheap test first: most rows have values
            if not _blank(row):
                problems.add(f"{filename} line {line}: every column the portal reads is empty; "
                             f"the row has values only in {_unread(header, row)}, which the "
                             "portal ignores: complete the row or delete it, and export again")
            continue
        if (controls_anywhere or end != line) and _has_control(filename, line, checks, values,
                                                               problems):
            continue
        yield line, values


_SEPARATORS = {";": "semicolons", "\t": "tabs"}


def _other_separator(text: str, required: tuple[str, ...]) -> str | None:
    """The name of the separator ("semicolons", "tabs") that splits the header line into every
    required column, when the file is not separated by commas; else None."""
    first = text.partition("\n")[0]
    for separator, name in _SEPARATORS.items():
        if separator in first:
            names = {h.strip().lower() for h in next(csv.reader([first], delimiter=separator))}
            if all(c.lower() in names for c in required):
                return name
    return None


def _blank(row: list[str]) -> bool:
    """A blank line, or a row whose every value is empty or whitespace: the ",,,," a spreadsheet
    leaves below the last row it saved. It says nothing, so it is skipped wherever it is."""
    return not any(map(str.strip, row))


def _unread(header: list[str], row: list[str]) -> str:
    """The columns that hold a row's values, by header name ('"periods", column 15'): for a row
    that has none in the columns read. Their values are not shown (a password column is one)."""
    names = (_header_name(header[i]) if i < len(header) and header[i].strip() else f"column {i + 1}"
             for i, value in enumerate(row) if value.strip())
    return ", ".join(dict.fromkeys(names))


HEADER_SHOWN = 40   # characters of a column's name a message shows


def _header_name(name: str) -> str:
    """A column's name for a one-line message: in quotes, at most HEADER_SHOWN characters, and
    any character that is not printable (a line break, a terminal's escape) as its code point
    (found by review: a header's escape codes reached the admin's terminal)."""
    name = name.strip()
    shown = "".join(c if c.isprintable() else f"U+{ord(c):04X}" for c in name[:HEADER_SHOWN])
    return f'"{shown}{"..." if len(name) > HEADER_SHOWN else ""}"'


def _readable(reader, filename: str, problems: Problems) -> Iterator[list[str]]:
    """The reader's rows, until one cannot be read as CSV: that one is named, and the rest of
    the file is not read (nothing of the bundle is written while a problem stands)."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            problems.add(f"{filename} line {reader.line_num}: {_csv_error(e)}")
            return
        yield row


def _csv_error(error: csv.Error) -> str:
    if "field larger than field limit" in str(error):
        return (f"a value is longer than {csv.field_size_limit() // (1024 * 1024)} MiB; "
                "no roster field is that long, so the export is damaged")
    return f"this line cannot be read as CSV ({error}); export the file again"


def _has_control(filename: str, line: int, checks: list[tuple[str, re.Pattern]], values: list[str],
                 problems: Problems) -> bool:
    """Name each value that holds a control character (each column's pattern says which); True
    if any does."""
    found = False
    for (column, pattern), value in zip(checks, values):
        match = pattern.search(value)
        if match:
            char = match.group()
            name = _CONTROL_NAMES.get(char, "a control character")
            problems.add(f"{filename} line {line}: {column} holds {name} (0x{ord(char):02X}); "
                         "remove it in the student information system and export again")
            found = True
    return found
