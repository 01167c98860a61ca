"""Printable badge sheets: one badge per 2-inch square label, twelve to a page.

The label layout is Avery 22806 (2" x 2" square labels, 3 across and 4 down on a US Letter
sheet): the first label 0.625" from the left and top edges, labels 2.625" apart across and
2 7/12" (2.583") apart down. The grid (7.25" x 9.75") sits at the same place from the top-left
corner on both papers, so on US Letter (8.5" x 11") and on A4 (8.27" x 11.69") every label stays
more than 0.39" inside each edge, clear of a printer's usual 0.25" unprintable margin. Print one
page on plain paper and hold it against a label sheet before printing on labels.

A badge shows the QR of its token alone (error correction Q, 0.92 mm modules, white around it),
the student's first name and last initial, and the school's name: no id, no address, nothing else.
Print at actual size (100%): a "fit to page" of 94% still keeps every label's ink on its label.
The PDF holds live sign-in tokens: hand it to the printer and delete it, never log or keep it.
"""
from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from io import BytesIO
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import quote

import arabic_reshaper
import redis
import segno
from bidi import get_display
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.units import inch, mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import ShapedStr, TTFont, shapeStr
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy.orm import Session

from portal import audit
from portal.badges.expiry import Clock, utcnow
from portal.badges.permissions import may_manage_section
from portal.badges.services import (
    BadgeError, NotPermitted, SheetConflict, finish_issuing, issue_planned, plan_section_badges,
)
from portal.badges.token import looks_like_badge, mint_token
from portal.models import Person, Section
from portal.names import WRITTEN_BEFORE, family_initial, tidy

log = logging.getLogger(__name__)

PAPERS = {"letter": LETTER, "a4": A4}
SAFE_MARGIN = 0.25 * inch   # what most office printers cannot print near the edge
QR_ERROR = "q"              # 25% of the symbol may be scuffed, bent or under a thumb
QUIET_ZONE = 4              # modules of white around the symbol ISO/IEC 18004 asks (see MODULE)


class SheetError(BadgeError):
    title = "That badge sheet can't be made"


@dataclass(frozen=True)
class LabelLayout:
    """A sheet of equal square labels, measured in points from the page's top-left corner."""
    name: str
    across: int
    down: int
    side: float
    left: float
    top: float
    pitch_x: float
    pitch_y: float

    @property
    def per_page(self) -> int:
        return self.across * self.down

    @property
    def grid_size(self) -> tuple[float, float]:
        return (self.pitch_x * (self.across - 1) + self.side,
                self.pitch_y * (self.down - 1) + self.side)

    def label_origin(self, slot: int, page_height: float) -> tuple[float, float]:
        """The bottom-left corner of label `slot` (0 top-left, row by row) in PDF coordinates."""
        row, column = divmod(slot, self.across)
        return (self.left + column * self.pitch_x,
                page_height - self.top - row * self.pitch_y - self.side)

    def fits(self, paper: tuple[float, float], margin: float = SAFE_MARGIN) -> bool:
        """True when every label lies inside the paper's printable area."""
        width, height = self.grid_size
        return (self.left >= margin and self.top >= margin
                and self.left + width <= paper[0] - margin
                and self.top + height <= paper[1] - margin)


AVERY_22806 = LabelLayout("Avery 22806", across=3, down=4, side=2 * inch, left=0.625 * inch,
                          top=0.625 * inch, pitch_x=2.625 * inch, pitch_y=31 / 12 * inch)

# Inside a label, centred from top to bottom (a print dialog's "fit to page" shrinks the page
# about its middle, moving the top row's labels down and the bottom row's up: equal white above
# and below keeps the most of each label on its die-cut square): the QR, a gap, the name, the
# school. The label's white around the QR is its quiet zone (ISO/IEC 18004 asks for 4 modules:
# over 10 at the sides, 5 above; the gap to the name is 3).
# One QR module as printed (33 make the symbol, 30 mm): the largest with which every label's ink
# stays on its die-cut square when a print dialog shrinks the page to 94% (Letter and A4); with
# 1 mm the bottom row's QR lost its top edge, and 3 labels in 12 no longer read.
MODULE = 0.92 * mm
_QR_GAP = 3                 # modules between the QR and the top of the name's capitals
_NAME_SIZE, _NAME_MIN = 12, 8
_SCHOOL_SIZE, _SCHOOL_MIN = 7.5, 6.5
_LINE_GAP = 1.5             # points between the name's descenders and the school's capitals
_CAP, _DESCENT = 0.73, 0.24  # DejaVu Sans's capital height and descent, per point of size
_TEXT_SIDE_PAD = 7


@dataclass(frozen=True)
class LabelContent:
    """Where a label's parts go, in points down from the label's top edge."""
    qr_top: float
    name_baseline: float
    school_baseline: float

    @classmethod
    def centred(cls, side: float, modules: int) -> "LabelContent":
        name_top = modules * MODULE + _QR_GAP * MODULE
        name_baseline = name_top + _CAP * _NAME_SIZE
        school_baseline = name_baseline + _DESCENT * _NAME_SIZE + _LINE_GAP + _CAP * _SCHOOL_SIZE
        height = school_baseline + _DESCENT * _SCHOOL_SIZE
        top = (side - height) / 2
        return cls(top, top + name_baseline, top + school_baseline)


@dataclass(frozen=True)
class SheetBadge:
    """What one label shows; the token only as its QR."""
    token: str = field(repr=False)
    name: str
    school: str
    # In bold in place of the school's name: a temporary badge's "Temporary until 14:30".
    note: str = ""


def temporary_note(expires_at: datetime, issued_at: datetime, zone: tzinfo) -> str:
    """What a temporary badge's label says, in the district's time (PORTAL_TIMEZONE): "Temporary
    until 14:30", with the day when that is not the day it was printed ("until Tue 02:00")."""
    end, start = expires_at.astimezone(zone), issued_at.astimezone(zone)
    return f"Temporary until {end:%H:%M}" if end.date() == start.date() else \
        f"Temporary until {end:%a %H:%M}"


@dataclass(frozen=True)
class Sheet:
    pdf: bytes = field(repr=False)
    badges: int
    pages: int
    issued: tuple = field(default=(), repr=False)  # for finish_issuing, after the commit
    # The labels (0: the first) whose name the portal cannot print (see blank_reasons): the
    # label has a blank line for it, to be written on by hand.
    incomplete: tuple[int, ...] = ()
    kept: int = 0       # the class's badge students left off the sheet: their card works and still does
    stopped: int = 0    # working cards the sheet's new ones replaced: they stopped working

    @property
    def incomplete_names(self) -> int:
        return len(self.incomplete)


# Why a label's name line is blank, as the class page (or the command) says it.
_WHY_BLANK = {"font": "no font on the portal has their letters",
              "shaping": "the portal cannot put their letters together as they are written: "
                         "its uharfbuzz package is missing"}


def blank_reasons(sheet: Sheet) -> dict[str, list[int]]:
    """The sheet's labels with a blank line (0: the first), by why: "font" (a letter in no
    installed font) or "shaping" (letters that must be shaped, and reportlab cannot)."""
    reasons: dict[str, list[int]] = {}
    for n in sheet.incomplete:
        why = _why_blank(badge_name(sheet.issued[n].person), _font_names()[1]) or "font"
        reasons.setdefault(why, []).append(n)
    return reasons


def blank_names_message(sheet: Sheet) -> str:
    """The names to write by hand on the sheet's labels that have a blank line, and where."""
    return " ".join(
        f"Write these names by hand on the blank line of their labels ({_WHY_BLANK[why]}; the QR "
        "codes work): " + "; ".join(f"{badge_name(sheet.issued[n].person)} ({label_place(n)})"
                                    for n in labels) + "."
        for why, labels in blank_reasons(sheet).items())


def label_place(n: int) -> str:
    """Where label `n` (0: the first) is on its sheet, as a teacher counts: "page 1, label 3"."""
    page, slot = divmod(n, AVERY_22806.per_page)
    return f"page {page + 1}, label {slot + 1}"


def badge_name(person: Person) -> str:
    """First name and last initial, e.g. "Ada L."; the first name alone when the family name has
    no letter (a placeholder such as "-"), the family name when there is no first name."""
    first = tidy(person.preferred_name or person.given_name or "")
    family = tidy(person.family_name or "")
    if not first:
        return family
    initial = family_initial(family)
    return f"{first} {initial}." if initial else first


_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"),)
_fonts: tuple[str, str] | None = None
# TrueType fonts for letters DejaVu Sans lacks, used for a name when installed (reportlab reads
# TrueType outlines only): Debian's fonts-noto-core (Thai, Devanagari, ...) and fonts-wqy-zenhei
# (Chinese, Japanese, Korean). (file, subfont of a collection)
_NOTO = Path("/usr/share/fonts/truetype/noto")
_WQY_ZENHEI = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
_FALLBACK_FONTS = tuple(
    (_NOTO / f"NotoSans{script}-Bold.ttf", 0)
    for script in ("Thai", "Devanagari", "Bengali", "Tamil", "Gujarati", "Gurmukhi", "Khmer",
                   "Lao", "Myanmar", "Oriya", "Telugu", "Kannada", "Malayalam", "Sinhala",
                   "Ethiopic", "Armenian", "Georgian")
) + ((_NOTO / "NotoSerifTibetan-Bold.ttf", 0),     # fonts-noto-core has no Noto Sans Tibetan
     (_WQY_ZENHEI, 0))
# The Debian packages of the label fonts, each by a file it installs (as the Makefile checks).
_FONT_PACKAGES = {"fonts-dejavu-core": Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
                  "fonts-noto-core": _NOTO / "NotoSansThai-Bold.ttf",
                  "fonts-wqy-zenhei": _WQY_ZENHEI}
_fallbacks: list[tuple[str, frozenset]] | None = None
# Fonts are registered once per process, by the first sheet; two printed at once in two threads
# must not see them half loaded.
_loading = threading.RLock()


def _font_names() -> tuple[str, str]:
    """(regular, bold): DejaVu Sans where installed (Latin, Greek, Cyrillic, Hebrew, Arabic and
    more), else the PDF standard Helvetica (Western European names only)."""
    global _fonts
    if _fonts is None:
        with _loading:
            if _fonts is None:
                found = ("Helvetica", "Helvetica-Bold")
                for folder in _FONT_DIRS:
                    regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
                    if regular.is_file() and bold.is_file():
                        pdfmetrics.registerFont(TTFont("BadgeSans", str(regular)))
                        pdfmetrics.registerFont(TTFont("BadgeSans-Bold", str(bold)))
                        found = ("BadgeSans", "BadgeSans-Bold")
                        break
                _fonts = found  # once registered: a sheet printed meanwhile waits for the lock
    return _fonts


def _covered(font: str) -> frozenset | None:
    """The code points `font` has letters for (None: a standard PDF font, Latin-1)."""
    face = getattr(pdfmetrics.getFont(font), "face", None)
    glyphs = getattr(face, "charToGlyph", None)   # a standard font's face has no such map
    return frozenset(glyphs) if glyphs is not None else None


def _fallback_fonts() -> list[tuple[str, frozenset]]:
    """The installed fallback fonts, registered, with what each covers."""
    global _fallbacks
    if _fallbacks is None:
        with _loading:
            if _fallbacks is None:
                found = []
                for n, (path, subfont) in enumerate(_FALLBACK_FONTS):
                    if path.is_file():
                        name = f"BadgeFallback{n}"
                        try:
                            pdfmetrics.registerFont(TTFont(name, str(path), subfontIndex=subfont))
                        except Exception as e:  # noqa: BLE001  a font reportlab cannot read: not used
                            log.warning("badge sheets: font %s not used (%s)", path, type(e).__name__)
                            continue
                        found.append((name, _covered(name)))
                _fallbacks = found
    return _fallbacks


# Letters not drawn one after the other as they are stored: vowel signs drawn before, above or
# around their consonant, conjuncts, stacked vowel and tone marks (the Indic scripts and Sinhala,
# Thai, Lao, Tibetan, Myanmar, Khmer). Drawn as stored, "किशन" reads "कशिन": HarfBuzz (uharfbuzz,
# through reportlab) shapes them with the layout tables of a font made for their script, a
# fallback font (DejaVu Sans has Lao letters but no such tables).
_SHAPED = re.compile("[\u0900-\u0dff\u0e00-\u0fff\u1000-\u109f\u1780-\u17ff\u19e0-\u19ff"
                     "\u1cd0-\u1cff\ua8e0-\ua8ff\ua9e0-\ua9ff\uaa60-\uaa7f]")
_JOINERS = "\u200c\u200d"   # zero width non-joiner and joiner: part of how a word is written
# reportlab gives each glyph a shaping makes that has no character of its own a private one, in
# the font (shared by every sheet): one shaping at a time.
_shaping = threading.Lock()


def _attached(c: str) -> bool:
    """Whether `c` belongs to the letter before it: a mark (a vowel sign, virama, accent) or a
    joiner."""
    return unicodedata.category(c).startswith("M") or c in _JOINERS


def _can_shape(font: str) -> bool:
    """Whether reportlab shapes text in `font`: a TrueType font, with uharfbuzz installed."""
    return getattr(pdfmetrics.getFont(font), "shapable", False)


def _runs(drawn: str, font: str, *, as_if_shaping: bool = False) -> list[tuple[str, str]] | None:
    """`drawn` in pieces of one font each: the whole in `font` or in one fallback when one has
    every letter, else each character in `font` when it has it (a space, the initial's full stop:
    script fonts such as Noto Sans Thai have neither), else in the first fallback that has it. A
    mark or joiner stays in its letter's font. A letter to be shaped (_SHAPED) is only in a
    fallback font, and only where reportlab can shape (as_if_shaping: as if it could). None when
    a character is in no such font."""
    fonts = [(font, _covered(font), False)] + [
        (name, covered, as_if_shaping or _can_shape(name)) for name, covered in _fallback_fonts()]

    def has(entry, c: str) -> bool:
        _, covered, shapes = entry
        if c.isspace():
            return True
        return (ord(c) < 256 if covered is None else ord(c) in covered) and \
            (shapes or not _SHAPED.match(c))

    whole = next((entry for entry in fonts if all(has(entry, c) for c in drawn)), None)
    if whole is not None:
        return [(drawn, whole[0])]
    runs: list[list] = []
    for c in drawn:
        if runs and _attached(c) and has(runs[-1][1], c):
            chosen = runs[-1][1]
        else:
            chosen = next((entry for entry in fonts if has(entry, c)), None)
            if chosen is None:
                return None
        if runs and runs[-1][1] is chosen:
            runs[-1][0] += c
        else:
            runs.append([c, chosen])
    return [(text, entry[0]) for text, entry in runs]


def _why_blank(text: str, font: str) -> str | None:
    """None when `text` can be drawn in `font` and the fallbacks (see _runs); else "shaping" when
    its letters are in them but reportlab cannot shape (no uharfbuzz), else "font"."""
    drawn = in_reading_order(text)
    if _runs(drawn, font) is not None:
        return None
    return "shaping" if _runs(drawn, font, as_if_shaping=True) is not None else "font"


def _shaped(text: str, font: str, size: float) -> str:
    """`text` as drawn in `font` (a piece _runs made): shaped when it has letters to shape (a
    ShapedStr: its glyphs in drawing order, each with its place), else as it is."""
    if not _SHAPED.search(text):
        return text
    with _shaping:
        return shapeStr(text, font, size)


def _width(text: str, font: str, size: float) -> float:
    """The width of `text` as _shaped returns it."""
    if isinstance(text, ShapedStr):
        return sum(glyph.x_advance for glyph in text.__shapeData__) * size / 1000
    return pdfmetrics.stringWidth(text, font, size)


def _runs_width(runs: list[tuple[str, str]], size: float) -> float:
    return sum(_width(_shaped(text, name, size), name, size) for text, name in runs)


def missing_font_packages() -> list[str]:
    """The Debian packages of label fonts that are not installed here."""
    return [package for package, file in _FONT_PACKAGES.items() if not file.is_file()]


def check_fonts() -> None:
    """Load the label fonts now: a broken font then fails before any badge changes."""
    _font_names()


# Arabic letters in their joined forms, without the reshaper's one ligature on by default besides
# lam-alef: ALLAH makes "الله" (Abdullah, Zabihullah) one character, U+FDF2, that no font the
# labels use has; written letter by letter it is the same word.
_RESHAPER = arabic_reshaper.ArabicReshaper(configuration={"ARABIC LIGATURE ALLAH": False})
# What the reshaper is given: Arabic letters, with the joiners between them. It drops every ZWJ,
# which in other scripts is part of how a name is spelled (Sinhala ශ්‍රී, Marathi र्‍).
_ARABIC = "\u0600-\u06ff\u0750-\u077f\u0870-\u08ff\ufb50-\ufdff\ufe70-\ufeff"
_ARABIC_RUN = re.compile(f"[{_ARABIC}](?:[{_ARABIC}{_JOINERS}]*[{_ARABIC}])?")


def in_reading_order(text: str) -> str:
    """`text` as it is drawn left to right: Arabic letters joined, right-to-left runs reversed
    (a PDF draws characters in the order given)."""
    if text.isascii():
        return text
    return get_display(_ARABIC_RUN.sub(lambda run: _RESHAPER.reshape(run.group()), text))


def _fit(text: str, font: str, size: float, smallest: float,
         width: float) -> tuple[list[tuple[str, str]], float]:
    """Shrink `text` to fit `width`, down to `smallest`; past that, cut it with an ellipsis
    (at the end of the name as it is read). Returns the text in drawing order, in pieces of
    one font each (see _runs), and the size."""
    def runs(t: str) -> list[tuple[str, str]]:
        drawn = in_reading_order(t)
        return _runs(drawn, font) or [(drawn, font)]

    def wide(t: str) -> float:
        return _runs_width(runs(t), size)

    while size > smallest and wide(text) > width:
        size = max(smallest, size - 0.5)
    if wide(text) <= width:
        return runs(text), size
    # A name keeps its initial ("Maximilia… W."): the first name is cut.
    found = _INITIAL_AT_END.search(text)
    head, tail = (text[:found.start()], found.group()) if found else (text, "")
    while head and wide(head + "…" + tail) > width:
        head = _less_one_letter(head)
    return runs(head.rstrip() + "…" + tail), size


def _less_one_letter(text: str) -> str:
    """`text` less its last letter, with the marks and joiners after it, and less what that
    would leave hanging before the cut: a virama or joiner (क् of क्ष), a vowel written before
    its consonant (Thai เ)."""
    end = len(text)
    while end:
        while end and _attached(text[end - 1]):
            end -= 1
        end = max(end - 1, 0)
        if not end:
            break
        last = text[end - 1]
        if not (unicodedata.combining(last) == 9 or last in _JOINERS or ord(last) in WRITTEN_BEFORE):
            break
    return text[:end]


_INITIAL_AT_END = re.compile(r" \w[^\w\s]{0,3}\.\Z")   # " W.", " Ấ." (a letter, its marks)


def _draw_qr(canvas: Canvas, qr, x: float, y_top: float) -> None:
    """Draw the QR symbol (MODULE a module) with its top-left corner at (x, y_top)."""
    modules = len(qr.matrix)
    path = canvas.beginPath()
    for row, line in enumerate(qr.matrix):
        column = 0
        while column < modules:
            if not line[column]:
                column += 1
                continue
            start = column
            while column < modules and line[column]:
                column += 1
            # One path for the whole symbol: no hairline seams between neighbouring modules.
            path.rect(x + start * MODULE, y_top - (row + 1) * MODULE, (column - start) * MODULE, MODULE)
    canvas.drawPath(path, stroke=0, fill=1)


def _draw_badge(canvas: Canvas, badge: SheetBadge, x: float, y: float, side: float) -> str | None:
    """Draw one label; when its name cannot be printed (a letter in no installed font, or
    letters to shape and no uharfbuzz), the label has a blank line to write the name on by hand
    (boxes in its place would say nothing, misplaced vowel signs misspell it; the QR is what
    signs in), and the answer is why (see _why_blank). A school name it cannot print is left off."""
    regular, bold = _font_names()
    qr = segno.make_qr(badge.token, error=QR_ERROR, boost_error=False)
    modules = len(qr.matrix)
    place = LabelContent.centred(side, modules)
    _draw_qr(canvas, qr, x + (side - modules * MODULE) / 2, y + side - place.qr_top)
    width = side - 2 * _TEXT_SIDE_PAD
    blank = None
    for is_name, text, font, size, smallest, baseline in (
            (True, badge.name, bold, _NAME_SIZE, _NAME_MIN, y + side - place.name_baseline),
            (False, badge.note or badge.school, bold if badge.note else regular, _SCHOOL_SIZE,
             _SCHOOL_MIN, y + side - place.school_baseline)):
        why = _why_blank(text, font)
        if why is not None:
            if is_name:
                blank = why
                canvas.setLineWidth(0.6)
                canvas.line(x + side * 0.2, baseline, x + side * 0.8, baseline)
            continue
        runs, size = _fit(text, font, size, smallest, width)
        left = x + (side - _runs_width(runs, size)) / 2
        for piece, name in runs:
            drawn = _shaped(piece, name, size)
            line = canvas.beginText(left, baseline)
            line.setFont(name, size)
            line.textOut(drawn)    # a ShapedStr: each glyph at the place HarfBuzz gave it
            canvas.drawText(line)
            left += _width(drawn, name, size)
    return blank


def _note_blank_names(canvas: Canvas, labels: dict[int, str], layout: LabelLayout,
                      page_height: float) -> None:
    """Say, in the page's top margin, which of its labels have a blank line for the name (slot:
    why, see _why_blank); the class page (or the command) says more."""
    numbers = [str(slot + 1) for slot in labels]
    which = (f"Label {numbers[0]} has" if len(numbers) == 1
             else f"Labels {', '.join(numbers[:-1])} and {numbers[-1]} have")
    why = ("no font here has its letters" if set(labels.values()) == {"font"}
           else "the portal cannot print its letters")
    canvas.setFont(_font_names()[0], 8)
    canvas.drawString(layout.left, page_height - layout.top + 12,
                      f"{which} a blank line: write the student's name on it by hand "
                      f"({why}; the class page names them).")


def render_sheet(badges: Sequence[SheetBadge], paper: str = "letter",
                 layout: LabelLayout = AVERY_22806, note: str = "") -> bytes:
    """Return the PDF of `badges`, one per label, in order, on `paper` ("letter" or "a4"), with
    `note` (one short line) in its first page's top margin."""
    return _render(badges, paper, layout, note)[0]


def _render(badges: Sequence[SheetBadge], paper: str, layout: LabelLayout = AVERY_22806,
            note: str = "") -> tuple[bytes, tuple[int, ...]]:
    """The PDF, and the labels (0: the first) whose name it cannot print (see _why_blank)."""
    if paper not in PAPERS:
        raise SheetError("Choose letter or A4 paper", "Use --paper letter or --paper a4.")
    if not badges:
        raise SheetError("There are no badges to print")
    for badge in badges:
        if not looks_like_badge(badge.token):
            raise ValueError("not a badge token")
    size = PAPERS[paper]
    out = BytesIO()
    canvas = Canvas(out, pagesize=size, pageCompression=1)
    canvas.setTitle("Badges")
    canvas.setCreator("Student portal")
    canvas.setProducer("Student portal")
    incomplete: dict[int, str] = {}
    if note:    # above the line _note_blank_names may write
        canvas.setFont(_font_names()[0], 8)
        canvas.drawString(layout.left, size[1] - layout.top + 24, note)
    for n, badge in enumerate(badges):
        slot = n % layout.per_page
        x, y = layout.label_origin(slot, size[1])
        why = _draw_badge(canvas, badge, x, y, layout.side)
        if why is not None:
            incomplete[n] = why
        if slot == layout.per_page - 1 or n == len(badges) - 1:
            page = {m % layout.per_page: why for m, why in incomplete.items()
                    if m // layout.per_page == n // layout.per_page}
            if page:
                _note_blank_names(canvas, page, layout, size[1])
            canvas.showPage()
    canvas.save()
    return out.getvalue(), tuple(incomplete)


class NothingToPrint(SheetError):
    """Every badge student of the class has a card that works: a sheet would be empty."""
    status = 409


def print_section_badges(db: Session, client: redis.Redis, section: Section, *,
                         actor: Person | None = None, paper: str = "letter", replace: bool = False,
                         expect: str | None = None, default_expires: str = "07-31",
                         zone: tzinfo = timezone.utc, clock: Clock = utcnow,
                         commit: bool = True) -> Sheet:
    """Issue cards for the section's badge students who have none that works at its school and
    return their sheet; with `replace`, for every one of them (their cards stop at once, whoever
    printed them: another class's teacher may have).

    Nothing changes when the paper is unknown, the actor may not manage the section, no student
    of the section uses a badge, none lacks a card (NothingToPrint), or `expect` (the
    services.cards_fingerprint of the class's cards a page showed) no longer matches them, or
    another tab makes cards for them meanwhile (SheetConflict). With commit=False nothing is
    committed: the caller commits once the sheet is safely kept (or rolls back), then calls
    services.finish_issuing(sheet.issued).
    """
    if paper not in PAPERS:
        raise SheetError("Choose letter or A4 paper", "Use --paper letter or --paper a4.")
    if actor is not None and not may_manage_section(db, actor, section):
        raise NotPermitted()
    check_fonts()
    plan = plan_section_badges(db, section, replace=replace,
                               default_expires=default_expires, zone=zone, clock=clock)
    if not plan.badge_students:
        raise SheetError(f"No student in {section.title} uses a badge",
                         "Badges are for the grades in the school's badge policy.")
    if expect is not None and expect != plan.fingerprint:
        raise SheetConflict()
    if not plan.students:
        raise NothingToPrint(f"Every student of {section.title} who uses a badge has a card "
                             "that works: there is nothing to print",
                             "To replace a lost card, use Replace card on the student's row.")
    # The sheet first, then the cards: the write transaction (on SQLite, the one write lock every
    # sign-in's audit record waits for) lasts for the writes alone, not the rendering.
    tokens = [mint_token() for _ in plan.students]
    school = section.school.name
    pdf, incomplete = _render([SheetBadge(token, badge_name(student), school)
                               for student, token in zip(plan.students, tokens)], paper)
    issued = issue_planned(db, plan, tokens, actor=actor)
    try:
        audit.record("badge_sheet_printed", actor=actor, commit=False, data={
            "section_id": section.id, "students": len(issued), "paper": paper,
            "cards_replaced": sum(bool(i.replaced) for i in issued)})
    except BaseException:
        db.rollback()
        raise
    # Those left off have a working card; every other working card was one of the sheet's.
    kept = plan.badge_students - len(plan.students)
    sheet = Sheet(pdf, len(issued), -(-len(issued) // AVERY_22806.per_page), tuple(issued),
                  incomplete, kept=kept, stopped=len(plan.working_ids) - kept)
    if commit:
        db.commit()
        finish_issuing(client, issued)
    return sheet


def inline_pdf(words: str, fallback: str) -> str:
    """The Content-Disposition of a sheet shown inline, named from `words` (a class's title, a
    student's label name): "badges-room-4.pdf". A name in other letters goes as RFC 6266's
    filename* (UTF-8), after an ASCII filename for browsers that read only that: the name with its
    accents dropped when that leaves every letter ("salle-elephants"), else `fallback` (ASCII,
    e.g. "badges-class-12.pdf"). Never a token: only what the page shows anyway."""
    # A word is letters and digits, with the marks on them (the vowel sign ि of "किशन") and the
    # joiners in them (ZWNJ in "ذبیح‌الله", ZWJ in "ශ්‍රී"); anything else is between words.
    kept = "".join(c if c.isalnum() or unicodedata.category(c).startswith("M") or c in _JOINERS
                   else " " for c in unicodedata.normalize("NFC", words).casefold())
    slug = "-".join(word for word in (w.strip(_JOINERS) for w in kept.split()) if word)
    plain = "".join(c for c in unicodedata.normalize("NFKD", slug) if not unicodedata.combining(c))
    ascii_name = f"{plain}.pdf" if slug and plain.isascii() and plain.replace("-", "").isalnum() \
        else fallback
    if not slug or slug.isascii():
        return f'inline; filename="{ascii_name}"'
    return f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(slug + '.pdf', safe='')}"


def write_private_file(path: Path, make: Callable[[], bytes]) -> None:
    """Write what `make()` returns to `path`, readable by its owner only.

    The folder is checked and a temporary file opened before `make` runs (it may issue
    badges), and `path` appears only once complete. Raises OSError.
    """
    path = Path(path).resolve()     # through a symlink, to the file it names
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder")
    if path.exists() and not path.is_file():
        # A device or a pipe: replacing it would put a file where the system expects one.
        raise OSError(errno.EINVAL, f"{path} is not a file (a device or a pipe): name a file")
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(make())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
