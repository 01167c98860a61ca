"""What the child sees: a preview window with a guide box and one plain line of feedback.

The feedback is decided by pure functions of the frame (brightness, the size of a QR-like
candidate) that tests call without a window. The window exists only when a screen does
(DISPLAY or WAYLAND_DISPLAY, and OpenCV's highgui works); otherwise the kiosk runs headless.
The picture shown is a mirrored copy drawn in memory; nothing is saved.
OpenCV's Qt backend aborts the whole process when it cannot reach the display (DISPLAY set, X
gone), so a child process tries a window first.
"""
from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
import time

import cv2
import numpy as np

from kiosk.decoder import BadgeRead

HOLD_IN_BOX = "Hold your badge inside the box"
CLOSER = "Hold your badge closer"
TOO_DARK = "Too dark"
ONE_AT_A_TIME = "One badge at a time, please"
CHECKING = "Checking your badge..."
SIGNED_IN = "Hi! Look at the screen."
REFUSED = "That badge didn't work. Ask your teacher."
TOO_MANY = "Too many tries, wait a moment"
WAIT = "Please wait a moment..."
OFFLINE = "Can't reach the portal. Ask your teacher."
NOT_ENROLLED = "This device needs to be set up again. Ask your teacher."
GETTING_READY = "Getting ready... scan your badge again"
STARTING = "Getting ready..."
NO_CAMERA = "The camera isn't working. Ask your teacher."

DARK_BELOW = 45.0       # mean gray level (0-255) under which a frame is too dark to read
CLOSER_BELOW = 0.18     # a QR-like candidate narrower than this share of the frame's height
_DETECT_HEIGHT = 480    # candidates are looked for at this height (finder sizes comparable)
GUIDE = 0.6             # the guide box's side, as a share of the frame's height
WINDOW = "Badge sign-in"

log = logging.getLogger(__name__)


def mean_brightness(gray: np.ndarray) -> float:
    """Mean gray level of a frame (every 4th pixel: plenty for a mean)."""
    return float(gray[::4, ::4].mean())


def finder_patterns(gray: np.ndarray) -> list[tuple[float, float, float]]:
    """Centre and side of each QR finder-pattern look-alike: a dark square, in a light ring,
    in a dark ring (three nested contours, the inner about 9/49 of the outer's area)."""
    binary = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 7, 5)
    contours, hierarchy = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    found = []
    if hierarchy is None:
        return found
    links = hierarchy[0]
    for i, contour in enumerate(contours):
        hole = links[i][2]
        inner = links[hole][2] if hole >= 0 else -1
        if inner < 0:
            continue
        x, y, w, h = cv2.boundingRect(contour)
        if w < 4 or h < 4 or not 0.5 < w / h < 2:
            continue
        area = cv2.contourArea(contour)
        if area < 0.5 * w * h or not 0.06 < cv2.contourArea(contours[inner]) / area < 0.45:
            continue
        found.append((x + w / 2, y + h / 2, float(max(w, h))))
    return found


def qr_candidates(gray: np.ndarray) -> list[float]:
    """Sides of QR-like candidates, as shares of the frame's height: three finder look-alikes
    of one size at the corners of a square (two sides alike, a near right angle)."""
    scale = min(1.0, _DETECT_HEIGHT / gray.shape[0])
    small = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale,
                                                 interpolation=cv2.INTER_AREA)
    finders = finder_patterns(small)[:40]   # bounds the triples on a busy background
    sides = []
    for trio in itertools.combinations(finders, 3):
        size = [f[2] for f in trio]
        if max(size) > 1.7 * min(size):
            continue
        module7 = sum(size) / 3
        for corner, a, b in ((trio[0], trio[1], trio[2]), (trio[1], trio[0], trio[2]),
                             (trio[2], trio[0], trio[1])):
            v1 = np.subtract(a[:2], corner[:2])
            v2 = np.subtract(b[:2], corner[:2])
            d1, d2 = float(np.linalg.norm(v1)), float(np.linalg.norm(v2))
            if not (2.2 * module7 < d1 < 7 * module7 and 2.2 * module7 < d2 < 7 * module7):
                continue
            if max(d1, d2) > 1.5 * min(d1, d2) or abs(np.dot(v1, v2) / (d1 * d2)) >= 0.5:
                continue
            # Finder centres are 3.5 modules in from the symbol's edges; a finder is 7 wide.
            sides.append(((d1 + d2) / 2 + module7) / small.shape[0])
            break
    return sorted(sides, reverse=True)


def advice(read: BadgeRead, brightness: float, candidates: list[float]) -> str:
    """The line to show under the picture when nothing else is happening."""
    if read.several:
        return ONE_AT_A_TIME
    if brightness < DARK_BELOW:
        return TOO_DARK
    if candidates and max(candidates) < CLOSER_BELOW:
        return CLOSER
    return HOLD_IN_BOX


def frame_advice(frame: np.ndarray, read: BadgeRead) -> str:
    """advice() for a BGR or gray frame (the candidate search runs only when it can matter)."""
    if read.several:
        return ONE_AT_A_TIME
    gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    brightness = mean_brightness(gray)
    if brightness < DARK_BELOW:
        return TOO_DARK
    return advice(read, brightness, qr_candidates(gray))


_PROBE = "import cv2; cv2.namedWindow('probe'); cv2.waitKey(1); cv2.destroyAllWindows()"


def screen_present(environ=os.environ) -> bool:
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


# How long the child process may take to open its window. It fails in about a second where
# there is no display to reach; it is slow only on a loaded machine (a Chromebook starting up
# opens the browser and the kiosk at once), and a kiosk that gave up then would run all day
# without its window: no child would see what it says.
WINDOW_PROBE_SECONDS = 30.0


def window_works(timeout: float = WINDOW_PROBE_SECONDS) -> bool:
    """True when OpenCV can open a window here (tried in a child process, which may abort);
    when not, the log says why: the kiosk then runs without a window."""
    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        log.warning("no window: opening one took over %.0f s; running without a window", timeout)
        return False
    except (OSError, subprocess.SubprocessError) as e:
        log.warning("no window: the window test could not run (%s); running without a window", e)
        return False
    if probe.returncode != 0:
        log.warning("no window: the screen (%s) could not be used; running without a window",
                    ", ".join(f"{name}={os.environ[name]}" for name in ("DISPLAY", "WAYLAND_DISPLAY")
                              if os.environ.get(name)) or "none set")
    return probe.returncode == 0


# What each line means, for a child who cannot read it: the guide box and the band under the
# picture take the state's colour, and a sign-in that worked shows a large tick in the box, a
# refused badge a large cross (the shape is the main signal: colour-blind children and teachers).
# The colours differ in lightness too (gray levels about 0, 80, 135 and 190).
WAITING, ADVICE, SIGNED_IN_STATE, REFUSED_STATE = "waiting", "advice", "signed in", "refused"
_STATES = {
    SIGNED_IN: SIGNED_IN_STATE,
    REFUSED: REFUSED_STATE,
    CLOSER: ADVICE, ONE_AT_A_TIME: ADVICE, TOO_DARK: ADVICE, TOO_MANY: ADVICE,
    OFFLINE: ADVICE, NO_CAMERA: ADVICE, NOT_ENROLLED: ADVICE,
}
# BGR: the guide box's colour, the band's, and the text's on that band.
_LOOKS = {
    WAITING: ((255, 255, 255), (0, 0, 0), (255, 255, 255)),
    ADVICE: ((0, 195, 255), (0, 195, 255), (0, 0, 0)),              # amber
    SIGNED_IN_STATE: ((60, 200, 40), (60, 200, 40), (0, 0, 0)),     # green
    REFUSED_STATE: ((40, 30, 190), (40, 30, 190), (255, 255, 255)),  # red
}


def state(message: str) -> str:
    """The state a line belongs to: a sign-in that worked, a refused badge, advice (the child
    or a teacher has something to do), or waiting (the idle line, and while the kiosk waits)."""
    return _STATES.get(message, WAITING)


# The tick's and the cross's strokes, as shares of the guide box's side from its top left.
TICK = ((0.2, 0.55), (0.42, 0.77), (0.82, 0.25))
CROSS = (((0.22, 0.22), (0.78, 0.78)), ((0.78, 0.22), (0.22, 0.78)))


def _mark(view: np.ndarray, points, colour, width: int) -> None:
    """A thick stroke through `points`, outlined in black so it shows over any picture."""
    line = np.array(points, np.int32).reshape(-1, 1, 2)
    cv2.polylines(view, [line], False, (0, 0, 0), width + max(4, width // 2), cv2.LINE_AA)
    cv2.polylines(view, [line], False, colour, width, cv2.LINE_AA)


def draw(frame: np.ndarray, message: str) -> np.ndarray:
    """The picture to show: mirrored (as a mirror, easier for children), guide box, message,
    each coloured by the message's state, with a tick or a cross in the box for an answer."""
    view = cv2.flip(frame, 1)
    if view.ndim == 2:
        view = cv2.cvtColor(view, cv2.COLOR_GRAY2BGR)
    h, w = view.shape[:2]
    kind = state(message)
    box, band_colour, text_colour = _LOOKS[kind]
    side = int(GUIDE * h)
    x0, y0 = (w - side) // 2, (h - side) // 2 - h // 20
    thick = max(2, h // 160) * (1 if kind == WAITING else 3)
    cv2.rectangle(view, (x0, y0), (x0 + side, y0 + side), box, thick)

    def at(fx: float, fy: float) -> tuple[int, int]:
        return x0 + int(fx * side), y0 + int(fy * side)

    if kind == SIGNED_IN_STATE:
        _mark(view, [at(*TICK[0]), at(*TICK[1]), at(*TICK[2])], box, max(6, side // 9))
    elif kind == REFUSED_STATE:
        for start, end in CROSS:
            _mark(view, [at(*start), at(*end)], box, max(6, side // 9))
    scale = h / 480
    (tw, th), _ = cv2.getTextSize(message, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, int(2 * scale)))
    if tw > w * 0.95:
        scale *= w * 0.95 / tw
        (tw, th), _ = cv2.getTextSize(message, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, int(2 * scale)))
    band = int(th * 2.2)
    cv2.rectangle(view, (0, h - band), (w, h), band_colour, -1)
    cv2.putText(view, message, ((w - tw) // 2, h - (band - th) // 2), cv2.FONT_HERSHEY_SIMPLEX,
                scale, text_colour, max(1, int(2 * scale)), cv2.LINE_AA)
    return view


class Preview:
    """The on-screen window. Open it with Preview.open(), which gives None without a screen."""

    def __init__(self, title: str = WINDOW):
        self.title = title
        self.closed = False

    @classmethod
    def open(cls, title: str = WINDOW) -> "Preview | None":
        if not screen_present() or not window_works():
            return None
        try:
            # The picture at its own size and nothing else. OpenCV's default Qt window has a
            # toolbar, and keys, that zoom, pan, save a frame to disk (Ctrl+S) or put it on the
            # clipboard (Ctrl+C); this window has none (tests/kiosk/test_preview_window.py).
            cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        except cv2.error:
            return None
        return cls(title)

    def show(self, frame: np.ndarray, message: str) -> bool:
        """Show the frame with its message; False once someone has closed the window."""
        if self.closed:
            return False
        try:
            cv2.imshow(self.title, draw(frame, message))
        except cv2.error:
            self.closed = True
        return self._answer(1)

    def wait(self, seconds: float) -> bool:
        """Keep showing what the window shows for `seconds`, answering meanwhile (it repaints,
        and can be closed), with no new picture; False once someone has closed it."""
        until = time.monotonic() + seconds
        while self._answer(max(1, min(100, int((until - time.monotonic()) * 1000)))):
            if time.monotonic() >= until:
                return True
        return False

    def _answer(self, milliseconds: int) -> bool:
        """Let the window handle its events for up to `milliseconds`; False once it is closed."""
        if self.closed:
            return False
        try:
            cv2.waitKey(milliseconds)
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                self.closed = True
        except cv2.error:
            self.closed = True
        return not self.closed

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass
        self.closed = True
