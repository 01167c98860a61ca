"""Finder marks (the three squares at a QR's corners), found with OpenCV in a camera frame:
where they place a QR that zxing could not (crops for pyzbar, kiosk/decoder.py), and whether a
second badge is in view beside the one read. Pure, as the decoder is.

A second badge that could not be read makes the frame SEVERAL_BADGES, not the token read
(sending it would sign one child in while another holds a badge up). When zxing read the
token (so its place is known), finder marks of a badge's size outside every QR read (the
search at half size at 720p, 1.3 ms; full size at 640x480, 1.0 ms) count as a QR when three
sit at a QR's corners, two at adjacent corners have the timing pattern between them (a thumb
hides the third), or two back a failure zxing placed there; one mark, or a failure alone,
is a wall's look-alike square too often. Bench condition one_hidden (one sharp badge, one
under a thumb over the lower 40% of its QR or blurred by 2-3.5 px; not in the counts above)
read as several, seeds 2024/7/23: 640x480 0/0/0 -> 9/9/9 of 20, 720p 5/4/3 -> 17/16/17.
By kind, 60 scenes of each over those seeds, 640x480 / 720p: thumb from below 0 -> 50 / 58,
from the bottom-right corner 0 -> 47 / 59, blur 2 px 2 -> 21 / 58 -> 60, blur 3 px 0 -> 0 /
2 -> 31, thumb from the left (two finder patterns hidden) 0 -> 10 / 4. Every other condition
kept its counts on all three seeds (no several for one badge); a badge frame costs 1-2 ms
more (a rough A/B on a busy machine), an empty one nothing. Not caught: a QR blurred past its
finder marks (3 px at 640x480: no mark and no zxing candidate is left), and a second badge
beside one pyzbar read (the read has no place here).
"""
from __future__ import annotations

from itertools import combinations

import cv2
import numpy as np

SMALL_FRAME = 640 * 480   # up to this size: searched at full size (the decoder: pyzbar too)
_FINDER_CROP_PIXELS = 120_000  # a larger finder-located crop is downscaled to this
_BADGE_MODULES = 33        # a badge's QR is version 4 (portal/badges/sheets.py)
_MARK_OF_QR = (0.07, 0.4)  # a finder mark's side, as a share of a read QR's bounding side
_ADJACENT = (2.8, 4.8)     # marks of adjacent corners: 26 modules apart, 7 across (3.7), skewed
_TIMING_CONTRAST = 12      # mean grey step between a timing pattern's modules, at least
_MAX_MARKS = 8             # marks another_qr pairs up, at most (bench frames: <= 6): 3 ms


def finder_patterns(gray: np.ndarray) -> list[tuple[float, float, float]]:
    """Centre x, centre y and side of each finder-pattern-like mark (a dark square in a light
    ring in a dark ring), in frame pixels, at full resolution: under a steep tilt a module is
    ~2 px across one way, which any downscaling loses."""
    block = max(15, min(gray.shape) // 24) | 1
    bw = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV,
                               block, 8)
    contours, hierarchy = cv2.findContours(bw, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    first = np.append(hierarchy[0][:, 2], -1)   # each contour's first child; first[-1] is -1
    core = first[first[:-1]]                    # the dark core inside a ring's light hole
    marks = []
    for ring in np.flatnonzero((core >= 0) & (first[core] < 0)):
        outer, inner = cv2.contourArea(contours[ring]), cv2.contourArea(contours[core[ring]])
        if inner >= 4 and 2 < outer / inner < 14:    # 49/9 modules in print, less when blurred
            m = cv2.moments(contours[core[ring]])
            marks.append((m["m10"] / m["m00"], m["m01"] / m["m00"], outer ** 0.5))
    return marks


def finder_groups(marks):
    """Corner boxes (y0, y1, x0, x1) where marks of one size sit as a QR's finder patterns:
    three at the corners of a (skewed) square first, then pairs, largest marks first."""
    triples, pairs = [], []
    for trio in combinations(marks, 3):
        box = _finder_triple(trio)
        if box is not None:
            triples.append((-np.mean([m[2] for m in trio]), box, trio))
    used = {m for *_, trio in triples for m in trio}
    for a, b in combinations(marks, 2):
        side, dist = (a[2] + b[2]) / 2, np.hypot(a[0] - b[0], a[1] - b[1])
        if (a in used and b in used) or not _finder_like(a, b) or not 1.5 * side < dist < 8 * side:
            continue
        half = 1.2 * dist + side    # the QR and its quiet zone, on either side of the line
        cx, cy = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
        pairs.append((-side, (cy - half, cy + half, cx - half, cx + half), (a, b)))
    return [box for _, box, _ in sorted(triples) + sorted(pairs)]


def _finder_like(*marks) -> bool:
    sides = [m[2] for m in marks]
    return max(sides) < 1.7 * min(sides)


def _finder_triple(trio):
    """The box around a QR whose finder patterns are `trio`, or None if they cannot be one."""
    if not _finder_like(*trio):
        return None
    side = np.mean([m[2] for m in trio])
    pts = np.array([m[:2] for m in trio])
    dists = [np.linalg.norm(pts[i - 1] - pts[i - 2]) for i in range(3)]
    if not (1.5 * side < min(dists) and max(dists) < min(8 * side, 2.5 * min(dists))):
        return None
    (ax, ay), (bx, by) = pts[1] - pts[0], pts[2] - pts[0]
    if abs(ax * by - ay * bx) < 0.2 * max(dists) ** 2:    # a row of marks, not a corner
        return None
    # Under a steep tilt the corner finder is not told by its angle or the longest side, so
    # the box holds each of the three places the fourth corner could be.
    quad = np.vstack([pts, pts.sum(axis=0) - 2 * pts])
    (x0, y0), (x1, y1) = quad.min(axis=0), quad.max(axis=0)
    margin = 1.2 * side + 0.1 * max(x1 - x0, y1 - y0)   # quiet zone, and perspective
    return y0 - margin, y1 + margin, x0 - margin, x1 + margin


def another_qr(gray: np.ndarray, read, spans, placed) -> bool:
    """Whether a QR lies outside every span where one was read (`read`: boxes of QRs read):
    finder marks of a badge's size there sit like a QR's three corners, or two like adjacent
    corners with the timing pattern between them (a thumb hides the third), or back a failure
    zxing placed there. Look-alike squares on a wall make one mark, seldom two that fit."""
    def outside(x, y, reach=0.0):
        return not any(abs(x - r[0]) < 0.6 * r[2] + reach and abs(y - r[1]) < 0.6 * r[2] + reach
                       for r in spans)

    # Both are badges, each about as far away as the other (within ~2.5x): marks of that size.
    lo, hi = _MARK_OF_QR[0] * min(r[2] for r in read), _MARK_OF_QR[1] * max(r[2] for r in read)
    marks = [m for m in _check_marks(gray) if lo < m[2] < hi and outside(*m)][:_MAX_MARKS]
    if any(_finder_triple(trio) is not None for trio in combinations(marks, 3)):
        return True
    for a, b in combinations(marks, 2):
        side = (a[2] + b[2]) / 2
        if (_finder_like(a, b) and _ADJACENT[0] < np.hypot(a[0] - b[0], a[1] - b[1]) / side
                < _ADJACENT[1] and _timing_between(gray, a, b)):
            return True
    largest = max(r[2] for r in read)
    for x, y, side in placed:
        if 0 < side < 2 * largest and outside(x, y):
            near = [m for m in marks if abs(m[0] - x) < 1.5 * side and abs(m[1] - y) < 1.5 * side]
            if len(near) >= 2:
                return True
    return False


def _check_marks(gray: np.ndarray) -> list[tuple[float, float, float]]:
    """Finder marks for another_qr: a large frame's at half size (1.3 ms, not 3.5, at 720p;
    a second badge's marks stay ~13 px across)."""
    if gray.size <= SMALL_FRAME:
        return finder_patterns(gray)
    half = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    return [(2 * x, 2 * y, 2 * s) for x, y, s in finder_patterns(half)]


def _timing_between(gray: np.ndarray, a, b) -> bool:
    """Whether a timing pattern (modules alternately dark and light) runs beside the line from
    finder mark a to b, on either side, as between adjacent corners of a badge's QR: in its
    7th row or column, 3 modules in from the marks' centres, 17 modules long."""
    (ax, ay), (bx, by), (h, w) = a[:2], b[:2], gray.shape
    ux, uy = (bx - ax) / (_BADGE_MODULES - 7), (by - ay) / (_BADGE_MODULES - 7)  # one module
    along = np.arange(8, _BADGE_MODULES - 8) - 3.5      # its modules, from a's centre
    for inward in (3, -3):
        xs = (ax + along * ux - inward * uy).astype(np.float32)[None]
        ys = (ay + along * uy + inward * ux).astype(np.float32)[None]
        if min(xs.min(), ys.min()) < 0 or xs.max() >= w - 1 or ys.max() >= h - 1:
            continue
        steps = np.diff(cv2.remap(gray, xs, ys, cv2.INTER_LINEAR)[0].astype(np.float32))
        turns = np.count_nonzero(steps[:-1] * steps[1:] < 0)
        if turns >= 0.8 * (len(steps) - 1) and np.abs(steps).mean() > _TIMING_CONTRAST:
            return True
    return False


def finder_crops(gray: np.ndarray):
    """Crops of the frame where finder patterns suggest a QR, most likely first (lazily: a
    crop pyzbar has no budget for is never cut)."""
    h, w = gray.shape
    for y0, y1, x0, x1 in finder_groups(finder_patterns(gray)):
        roi = gray[int(max(0, y0)):int(min(h, y1)), int(max(0, x0)):int(min(w, x1))]
        if min(roi.shape) < 16:
            continue
        if roi.size > _FINDER_CROP_PIXELS:
            f = (_FINDER_CROP_PIXELS / roi.size) ** 0.5   # linear: area costs 5x as much
            roi = cv2.resize(roi, None, fx=f, fy=f, interpolation=cv2.INTER_LINEAR)
        yield np.ascontiguousarray(roi)
