"""Camera frame -> badge token. Pure: no I/O; a frame is never kept, written or logged.

Chosen by measurement (`python -m bench.decode`: badges as portal/badges/sheets.py prints them,
QR version 4-Q; seed 2024, 20 frames per condition and size; CPU ms on one thread of a shared
2-core machine): zxing-cpp first, pyzbar as its fallback, OpenCV's detectors not used.
Badge frames read, of 240 (12 conditions), at 640x480 / 1280x720, and median ms at 720p:
    kiosk.decoder 215 / 229   1.8 ms (p95 <= 12.4 in every condition; empty frames 2.7)
    zxing-cpp     204 / 217   2.9 ms      pyzbar 183 / 214  17 ms
    OpenCV QRCodeDetectorAruco 140 / 182  35 ms (QRCodeDetector read fewer, and slower)
No wrong decodes and no false positives from any of them. Full-frame pyzbar at 720p still reads
one tilted frame in 20 more (and one steep-tilt clip, card turned ~56/39 degrees), but costs
17 ms, over the 15 ms budget; at 0.71 scale it reads them too but costs 16-17 ms with the looks.
zxing on the frame stretched 1.3x vertically reads that clip in 5 ms, but not the frame, and
stretching both ways put p95 at 15.7 ms.
- zxing-cpp reads the whole frame first: the best single decoder, and the only one within the
  budget at 720p. If it finds nothing, it looks again at half size (blur, noise) and with its
  fixed-threshold binarizer (shadow, glare). These looks are all an empty frame costs.
- When a look found a QR-like candidate that failed to decode (zxing's return_errors), the
  candidate is cropped (3x its side: zxing often reports a part of the QR) and retried: zxing
  on the sharpened crop, with the global-histogram binarizer, upscaled 1.5x, after a 3x3
  open-close (thin scratches), then pyzbar sharpened and plain within a per-frame pixel budget.
- When zxing saw a QR it could not place (a format error has no position), pyzbar reads the
  whole frame, downscaled to 250k pixels, after dividing out uneven light: most glare, shadow,
  scratch and steep-tilt rescues come from here. A QR read elsewhere (a poster) skips this.
  At 720p it also follows failed crops, but only when a crop was shrunk more than the whole
  frame is (a large candidate: zxing placed the QR wrongly, or the crop is most of the frame):
  pyzbar then skips that crop and reads the sharper whole frame instead (glare and shadow at
  720p: one frame in 20 more each, p95 12.4 ms).
A median filter, CLAHE, a sharpened whole-frame look and OpenCV's detectors on the crop added
little for their time; pyzbar on every frame would read a few more but cost 6-17 ms each.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import zxingcpp
from pyzbar import pyzbar

from portal.badges.token import looks_like_badge

_QR = zxingcpp.BarcodeFormat.QRCode
_ZBAR_QR = [pyzbar.ZBarSymbol.QRCODE]
_MAX_CANDIDATES = 2    # failed candidates retried per frame, largest first: bounds the time
_SECOND_RETRIES = 2    # zxing retries the second candidate gets (the first gets all)
_CROP = 3.0            # crop side, in candidate sides: zxing often reports a part of the QR
_CROP_OF_FRAME = 0.4   # and at least this much of the frame's height, for the same reason
_MIN_CROP = 150        # smaller crops are upscaled to twice this (tiny QRs read better larger)
_MAX_CROP = 320        # larger ones are downscaled to it, which bounds the retries' time
_ZBAR_PIXELS = 110_000  # crop pixels pyzbar may scan per frame: one 720p crop, three 480p ones
_ZBAR_FRAME_PIXELS = 250_000  # a whole frame for pyzbar is downscaled to this (720p to 0.52)
_SMALL_FRAME = 640 * 480   # up to this size there is time for crops and a whole-frame pyzbar


@dataclass(frozen=True, slots=True)
class BadgeRead:
    """What a frame shows: one badge's token, several badges, or none. repr hides the token."""
    token: str | None = field(default=None, repr=False)
    several: bool = False

    @property
    def found(self) -> bool:
        return self.token is not None


NO_BADGE = BadgeRead()
SEVERAL_BADGES = BadgeRead(several=True)


def read_badge(frame: np.ndarray) -> BadgeRead:
    """Return the one badge token in `frame` (BGR, BGRA or gray), SEVERAL_BADGES, or NO_BADGE."""
    gray = _gray(frame)
    hinted, seen = False, []
    for look in _LOOKS:
        tokens, read, failed, hint = _look(gray, *look)
        hinted, seen = hinted or hint, seen + read
        if tokens or failed:
            break
    failed = [box for box in failed if not any(_within(box, r, 0.5) for r in seen)]
    zbar_budget, coarse = [_ZBAR_PIXELS], False
    for n, box in enumerate(_candidates(failed)):
        if len(tokens) > 1:
            break
        retries = _ZXING_RETRIES[:_SECOND_RETRIES] if n else _ZXING_RETRIES
        roi = _crop(gray, box)
        shrunk = roi.shape[0] < _frame_scale(gray) * _crop_height(gray, box)
        # pyzbar on a crop shrunk more than the whole frame will be: it reads the frame instead
        found, any_read = _reread(roi, retries, [0] if shrunk else zbar_budget)
        coarse |= shrunk
        tokens |= found
        seen += [box] if any_read else []
    # A QR zxing saw but could not place, or placed wrongly: pyzbar on the whole frame, when
    # there was no crop to retry, a crop was shrunk more than the whole frame will be (it saw
    # less than pyzbar on the frame would), or the frame is small enough to afford both. Not
    # when a QR was read (a poster on the wall), which is most likely what zxing saw.
    if not tokens and hinted and not seen and (not failed or coarse or gray.size <= _SMALL_FRAME):
        tokens = _whole_frame_zbar(gray)
    if len(tokens) > 1:
        return SEVERAL_BADGES
    return BadgeRead(tokens.pop()) if tokens else NO_BADGE


def _gray(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim not in (2, 3):
        raise ValueError("a frame is an 8-bit image array (gray, BGR or BGRA)")
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    return np.ascontiguousarray(frame.reshape(frame.shape[:2]))


# Whole-frame zxing passes, in order, until one reads a badge or finds a failed candidate:
# (downscale factor, binarizer). Each costs 0.4-1.3 ms at 720p; together, an empty frame's cost.
_LOOKS = ((1, zxingcpp.Binarizer.LocalAverage), (2, zxingcpp.Binarizer.LocalAverage),
          (1, zxingcpp.Binarizer.FixedThreshold))


def _look(gray: np.ndarray, shrink: int, binarizer):
    """One whole-frame zxing pass: badge tokens, boxes of QRs read, boxes of failed candidates,
    and whether it saw any QR-like failure at all (zxing reports some with no position)."""
    img = gray if shrink == 1 else cv2.resize(gray, None, fx=1 / shrink, fy=1 / shrink,
                                              interpolation=cv2.INTER_AREA)
    results = zxingcpp.read_barcodes(img, formats=_QR, try_rotate=False, try_invert=False,
                                     binarizer=binarizer, return_errors=True)
    tokens = {r.text for r in results if r.valid and looks_like_badge(r.text)}
    read = [_box(r.position, shrink) for r in results if r.valid]
    failed = [_box(r.position, shrink) for r in results if not r.valid and _plausible(r.position)]
    return tokens, read, failed, any(not r.valid for r in results)


def _whole_frame_zbar(gray: np.ndarray) -> set[str]:
    """Badge tokens pyzbar reads in the frame, downscaled to _ZBAR_FRAME_PIXELS at most."""
    f = _frame_scale(gray)
    img = gray if f == 1.0 else cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    return {t for t in _zbar(_flatten(img)) if looks_like_badge(t)}


def _frame_scale(gray: np.ndarray) -> float:
    """The scale _whole_frame_zbar shrinks the frame by."""
    return min(1.0, (_ZBAR_FRAME_PIXELS / gray.size) ** 0.5)


def _corners(position) -> np.ndarray:
    return np.array([(p.x, p.y) for p in (position.top_left, position.top_right,
                                          position.bottom_right, position.bottom_left)], np.float32)


def _box(position, scale: float = 1) -> tuple[float, float, float]:
    """Centre x, centre y and side of a position's bounding square, in frame pixels."""
    pts = _corners(position) * scale
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    return (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0)


def _plausible(position) -> bool:
    """A convex quadrilateral with sides within 2.5x of each other (zxing reports wild ones too)."""
    pts = _corners(position)
    sides = np.linalg.norm(pts - np.roll(pts, 1, axis=0), axis=1)
    return sides.min() >= 8 and sides.min() * 2.5 >= sides.max() and cv2.isContourConvex(pts)


def _candidates(failed):
    """Failed candidates, largest first, without repeats."""
    chosen: list[tuple[float, float, float]] = []
    for box in sorted(failed, key=lambda b: -b[2]):
        if not any(_same(box, c) for c in chosen):
            chosen.append(box)
    return chosen[:_MAX_CANDIDATES]


def _within(box, other, reach: float) -> bool:
    """True when box's centre is within `reach` of other's side from other's centre."""
    return abs(box[0] - other[0]) < reach * other[2] and abs(box[1] - other[1]) < reach * other[2]


def _same(box, other) -> bool:
    """Two reports of one candidate: about the same place and size (a part of a QR is not)."""
    small, large = sorted((box[2], other[2]))
    return large < 1.5 * small and _within(box, other, 0.5)


def _crop_bounds(gray: np.ndarray, box) -> tuple[int, int, int, int]:
    cx, cy, side = box
    h, w = gray.shape
    half = max(side * _CROP, _CROP_OF_FRAME * min(h, w)) / 2
    return int(max(0, cy - half)), int(min(h, cy + half)), int(max(0, cx - half)), int(min(w, cx + half))


def _crop_height(gray: np.ndarray, box) -> int:
    y0, y1, _, _ = _crop_bounds(gray, box)
    return y1 - y0


def _crop(gray: np.ndarray, box) -> np.ndarray:
    y0, y1, x0, x1 = _crop_bounds(gray, box)
    roi = gray[y0:y1, x0:x1]
    if min(roi.shape) < 16:
        return roi
    longest = max(roi.shape)
    if longest < _MIN_CROP:
        f = 2 * _MIN_CROP / longest
        return cv2.resize(roi, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
    if longest > _MAX_CROP:
        f = _MAX_CROP / longest
        return cv2.resize(roi, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(roi)


def _zxing(img: np.ndarray, binarizer=zxingcpp.Binarizer.LocalAverage) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(img, formats=_QR, try_rotate=False,
                                                    try_invert=False, binarizer=binarizer)]


def _zbar(img: np.ndarray) -> list[str]:
    return [r.data.decode("latin-1") for r in pyzbar.decode(img, symbols=_ZBAR_QR)]


def _sharpen(img: np.ndarray) -> np.ndarray:
    return cv2.addWeighted(img, 2.0, cv2.GaussianBlur(img, (0, 0), 2), -1.0, 0)


def _flatten(img: np.ndarray) -> np.ndarray:
    """Divide out uneven light (a shadow's edge, a dim corner) over ~30 px."""
    return cv2.divide(img, cv2.blur(img, (31, 31)), scale=160)


def _open_close(img: np.ndarray) -> np.ndarray:
    k = np.ones((3, 3), np.uint8)
    return cv2.morphologyEx(cv2.morphologyEx(img, cv2.MORPH_OPEN, k), cv2.MORPH_CLOSE, k)


# Ordered by rescues per millisecond in the bench.
_ZXING_RETRIES = (
    lambda roi: _zxing(_sharpen(roi)),
    lambda roi: _zxing(roi, zxingcpp.Binarizer.GlobalHistogram),
    lambda roi: _zxing(cv2.resize(roi, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)),
    lambda roi: _zxing(_open_close(roi)),
)
_ZBAR_RETRIES = (
    lambda roi: _zbar(_sharpen(roi)),
    _zbar,
)


def _reread(roi: np.ndarray, zxing_retries, zbar_budget: list[int]) -> tuple[set[str], bool]:
    """Retry a failed candidate's crop until one retry reads a QR: its badge tokens, and whether
    anything was read (a QR that is not a badge needs no more tries). pyzbar (slower) only
    while the frame's budget of pixels lasts."""
    if min(roi.shape) < 16:
        return set(), False
    for retry in zxing_retries + _ZBAR_RETRIES:
        if retry in _ZBAR_RETRIES:
            if roi.size > zbar_budget[0]:
                break
            zbar_budget[0] -= roi.size
        texts = retry(roi)
        if texts:
            return {t for t in texts if looks_like_badge(t)}, True
    return set(), False
