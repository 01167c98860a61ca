"""Camera frame -> badge token. Pure: no I/O; a frame is never kept, written or logged.

Chosen by measurement (`python -m bench.decode`: badges as portal/badges/sheets.py prints them,
QR version 4-Q; seed 2024, 20 frames per condition and size; CPU ms on one thread of a shared
2-core machine): zxing-cpp first, pyzbar as its fallback, OpenCV's detectors not used.
Badge frames read, of 240 (12 conditions), at 640x480 / 1280x720, and median ms at 720p:
    kiosk.decoder 216 / 231   2.0 ms (p95 <= 10.7 in every condition, max 11.3; empty 2.9)
    zxing-cpp     204 / 217   3.0 ms      pyzbar 183 / 214  18 ms
    OpenCV QRCodeDetectorAruco 140 / 182  36 ms (QRCodeDetector read fewer, and slower)
No wrong decodes and no false positives from any of them; every hard-condition clip is read
within one second (the slowest, defocus at 640x480, on its 6th frame, 168 ms in). Runs while
others loaded the machine put the worst 720p p95 at 14.6-17.6 ms (pyzbar's own p95 then
28-30): CPU time on one of two hyperthreads swells when the other is busy; re-run then.
- zxing-cpp reads the whole frame first: the best single decoder, and the only one within the
  budget at 720p. If it finds nothing, it looks again at half size (blur, noise) and with its
  fixed-threshold binarizer (shadow, glare). These looks are all an empty frame costs.
- When a look found a QR-like candidate that failed to decode (zxing's return_errors), the
  candidate is cropped (3x its side: zxing often reports a part of the QR) and retried: zxing
  on the sharpened crop, with the global-histogram binarizer, upscaled 1.5x, after a 3x3
  open-close (thin scratches), then pyzbar sharpened and plain within a per-frame pixel budget
  (not on a crop shrunk more than the whole frame would be: the pass below sees it sharper).
- When zxing saw a QR but read none (a format error has no position; the crops failed),
  pyzbar reads the whole of a 640x480 frame at full size, after dividing out uneven light,
  then plain finder-located crops (below); when zxing saw nothing QR-like at all, only the
  plain crops, and only in a 640x480 frame (see "Other seeds"). At 720p the whole frame
  costs 8 ms at 0.52 scale (17 at full size) and misses steep tilts: a card turned ~50/40
  degrees has modules ~2 px across one way, zxing finds its finder patterns but misjudges the
  symbol size ("Invalid symbol size"), and the halved frame loses them. So a large frame
  looks for the finder patterns itself (nested dark-light-dark contours of an adaptive
  threshold, at full size: 2-3 ms) and gives pyzbar full-resolution crops where three, then
  two, of one size sit like a QR's corners (a pair's crop reaches 1.2x their distance and a
  mark past it either way: the QR and its quiet zone lie on one side, which is not known),
  plain then light-flattened; only when none do, the whole frame, downscaled to what is
  left (area-halved, then linear: a non-integer area resize alone cost 2.2 ms). All pyzbar
  work of a frame shares one budget of 250k pixels (the search counted as 80k), which bounds
  the worst frame at ~11 ms.
  Measured against the whole-frame pass it replaced: tilted 19 -> 20 of 20, glare 16 -> 17,
  the steep-tilt clip (card at 56/39 degrees) unread -> read on 22 of its 30 frames, shadow
  and scratch rescues kept, worst p95 at 720p 12.4 -> 10.7 ms. Over 36 other steep poses
  (tests' seeds, yaw +-50-56, pitch +-35-39) it reads 34, the decoder before it 16. With
  --seed 7 it reads 234 of 240 at 720p (as before), at least as many as any bare decoder
  in every condition; at 640x480 pyzbar read one rotated frame that it missed (so did the
  decoder before it), now read: see "Other seeds".
- Other seeds (2024, 7, 11, 23, 3, 42, 99; per-frame reads against pyzbar, zxing-cpp and
  OpenCV's aruco detector): the decoder before this read one frame fewer than bare pyzbar in
  a condition at 640x480 with --seed 7 (rotated), 11 (tilted), 23 and 3 (glare), and at 720p
  with 23 (shadow, fewer than aruco), 3 (glare, tilted) and 99 (scratched, two fewer). Three
  causes: zxing reports a part of the QR and its 3x crop cuts the QR off (seed 7), which the
  whole frame at 0.9 scale does not read and at full size does (pyzbar costs the same at 0.9
  and 1.0 of a 640x480 frame, ~7 ms); the flattened whole frame loses a glare's edge (23, 3)
  where plain finder-located crops read it; and zxing sees nothing QR-like, so no pyzbar pass
  ran (11 tilted, 3 glare; at 720p 23 shadow, 3 tilted): on a 640x480 frame the
  finder-pattern search (1.0 ms) now runs on such frames too, with plain crops only (no
  flattened ones, no whole frame: an empty frame's look-alike squares group now and then).
  Every seed now meets the bare decoders in every 640x480 condition. At 720p the same search
  (2.3 ms) read the 720p frames above but for seed 99's (zxing places nothing on two scratched
  cards that pyzbar reads only on the whole frame at >= 0.43 scale), and cost an empty frame
  3.5 -> 5.2 ms median and the worst condition's p95 12.4 -> 14.2 ms, the same sitting: too
  close to the 15 ms budget, so 720p frames keep the passes above. The cost at 640x480 is idle
  time: empty frames went from median/p95 1.4/13.2 to 2.8/18.4 ms (p95: frames where zxing
  hints a QR now also get the crops). Tried and dropped: a plain whole frame at 640x480
  instead of the flattened one (lost shadow frames), both of them (~14 ms on a hinted empty
  frame), finder triples only for unhinted frames (lost a scratched frame per seed), an extra
  whole-frame zxing look (flattened, global histogram or opened and closed: each rescued a
  different few, none of the tilted ones).
- A second badge that could not be read makes the frame SEVERAL_BADGES, not the token read:
  see kiosk/finders.py, which also finds the finder marks that place crops for pyzbar.
- Tried before and dropped: the whole-frame pyzbar at 0.71 scale (reads the steep tilts, but
  16-17 ms), zxing on the frame stretched 1.3x one way (reads the clip, not the frame; both
  ways put p95 at 15.7 ms), picking the corner finder by angle or by the longest side (wrong
  under steep perspective: the crop holds all three places the fourth corner could be), and
  finder crops at 640x480: instead of the whole frame they lost a shadow clip; before it,
  they read one frame more (--seed 7, rotated) but took empty 480p frames from p95 9 to 18
  ms. Crops scaled to ~4 px a module, or flattened before plain, read no more. A median
  filter, CLAHE, a sharpened whole-frame look and OpenCV's detectors (10-30 ms just to
  detect at 720p) added little for their time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import zxingcpp
from pyzbar import pyzbar

from kiosk.finders import SMALL_FRAME, another_qr, finder_crops
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
_ZBAR_FRAME_PIXELS = 250_000  # a whole frame for pyzbar is downscaled to this (720p to 0.52),
                              # and all pyzbar may scan of a larger frame (~8 ms at 720p)
_FINDER_COST = 80_000      # the finder-pattern search costs about what pyzbar does on these pixels
_MIN_ZBAR_FRAME = 100_000  # a whole frame is not worth pyzbar's time below this many pixels
_MIN_FINDER_CROP = 20_000  # nor a finder search when pyzbar could not scan a crop this large


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
    hinted, seen, placed, spans = False, [], [], []
    for look in _LOOKS:
        tokens, read, failed, hint, outlined = _look(gray, *look)
        hinted, seen, placed = hinted or hint, seen + read, placed + outlined
        if tokens or failed:
            break
    failed = [box for box in failed if not any(_within(box, r, 0.5) for r in seen)]
    zbar_budget = [_ZBAR_PIXELS]
    for n, box in enumerate(_candidates(failed)):
        if len(tokens) > 1:
            break
        retries = _ZXING_RETRIES[:_SECOND_RETRIES] if n else _ZXING_RETRIES
        roi = _crop(gray, box)
        # pyzbar on a crop shrunk more than the whole frame would be: the pass below sees it sharper
        shrunk = roi.shape[0] < _frame_scale(gray) * _crop_height(gray, box)
        found, any_read = _reread(roi, retries, [0] if shrunk else zbar_budget)
        tokens |= found
        if any_read:    # the QR read lies in the crop, not only in the part zxing placed
            seen.append(box)
            spans.append((box[0], box[1], max(box[2] * _CROP, _CROP_OF_FRAME * min(gray.shape))))
    # zxing saw a QR it could not read, or could not place (a format error has no position):
    # pyzbar on the whole of a small frame at full size, then where finder patterns place a
    # QR; on a large one, where finder patterns place a QR, within what is left of the frame's
    # pyzbar pixels. zxing saw nothing QR-like: pyzbar only where finder patterns place one.
    # Not when a QR was read (a poster on the wall), which is most likely what zxing saw.
    if not tokens and not seen:
        if not hinted:
            # Only on a small frame: at 720p the search on every frame zxing finds empty took
            # 2 ms of an idle kiosk's frame and the worst conditions' p95 to the 15 ms budget.
            if gray.size <= SMALL_FRAME:
                tokens = _located_zbar(gray, _ZBAR_FRAME_PIXELS, flatten=False, whole=False)
        elif gray.size <= SMALL_FRAME:
            tokens = (_whole_frame_zbar(gray, gray.size)
                      or _located_zbar(gray, _ZBAR_FRAME_PIXELS, flatten=False, whole=False))
        else:
            tokens = _located_zbar(gray, _ZBAR_FRAME_PIXELS - (_ZBAR_PIXELS - zbar_budget[0]))
    # A second badge that could not be read still means "one at a time": sending the one that
    # was read would sign its holder in while another child holds theirs up.
    if len(tokens) > 1 or (tokens and seen and another_qr(gray, seen, seen + spans, placed)):
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
    whether it saw any QR-like failure at all (zxing reports some with no position), and boxes
    of failures with a convex outline (a partly hidden QR's is often too skewed to retry)."""
    img = gray if shrink == 1 else cv2.resize(gray, None, fx=1 / shrink, fy=1 / shrink,
                                              interpolation=cv2.INTER_AREA)
    results = zxingcpp.read_barcodes(img, formats=_QR, try_rotate=False, try_invert=False,
                                     binarizer=binarizer, return_errors=True)
    tokens = {r.text for r in results if r.valid and looks_like_badge(r.text)}
    read = [_box(r.position, shrink) for r in results if r.valid]
    errors = [r.position for r in results if not r.valid]
    failed = [_box(p, shrink) for p in errors if _plausible(p)]
    outlined = [_box(p, shrink) for p in errors if cv2.isContourConvex(_corners(p))]
    return tokens, read, failed, bool(errors), outlined


def _whole_frame_zbar(gray: np.ndarray, pixels: int = _ZBAR_FRAME_PIXELS) -> set[str]:
    """Badge tokens pyzbar reads in the frame, downscaled to `pixels` at most."""
    return {t for t in _zbar(_flatten(_shrink(gray, _frame_scale(gray, pixels))))
            if looks_like_badge(t)}


def _shrink(gray: np.ndarray, f: float) -> np.ndarray:
    """The frame scaled by f <= 1, area-averaged. Below half, to half and then linear: OpenCV's
    area resize is 50x faster by exact halves (0.04 ms, not 2.2, at 720p); a linear resize
    above half read a shadow clip's frames less often at 640x480."""
    if f < 0.5:
        half = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        return cv2.resize(half, None, fx=2 * f, fy=2 * f, interpolation=cv2.INTER_LINEAR)
    return gray if f == 1.0 else cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)


def _located_zbar(gray: np.ndarray, pixels: int, flatten: bool = True,
                  whole: bool = True) -> set[str]:
    """Badge tokens pyzbar reads where finder patterns place a QR, plain then (if `flatten`)
    with light flattened, within `pixels` (the search itself costs _FINDER_COST of them); if
    `whole`, on the whole frame with what is left when no finder patterns group like a QR's."""
    budget = pixels - _FINDER_COST
    if budget < _MIN_FINDER_CROP:
        return set()
    located = False
    for roi in finder_crops(gray):
        located = True
        for prepare in (np.asarray, _flatten) if flatten else (np.asarray,):
            if roi.size > budget:
                return set()
            budget -= roi.size
            texts = _zbar(prepare(roi))
            if texts:
                return {t for t in texts if looks_like_badge(t)}
    if located or not whole or budget < _MIN_ZBAR_FRAME:
        return set()
    return _whole_frame_zbar(gray, budget)


def _frame_scale(gray: np.ndarray, pixels: int = _ZBAR_FRAME_PIXELS) -> float:
    """The scale _whole_frame_zbar shrinks the frame by."""
    return min(1.0, (pixels / gray.size) ** 0.5)


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
