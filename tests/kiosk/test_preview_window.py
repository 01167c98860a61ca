"""The preview window on a real screen: an X server (Xvfb) whose framebuffer the test reads back.

The kiosk's window shows the camera picture mirrored, with the guide box and the plain line of
advice under it; without a screen there is no window and the kiosk runs headless.
"""
from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk import preview
from tests.kiosk.helpers import ROOT

TOOLS = ("Xvfb", "xdotool", "xclip")
pytestmark = [pytest.mark.no_database, pytest.mark.skipif(
    not all(shutil.which(tool) for tool in TOOLS),
    reason="needs Xvfb, xdotool and xclip (Debian packages xvfb xdotool xclip; make test installs them)")]

SHOW = """
import sys, cv2, numpy as np
from kiosk import preview
frame = np.full((480, 640, 3), 40, np.uint8)        # a dark classroom
cv2.circle(frame, (160, 240), 60, (0, 160, 255), -1) # something on the left, to see the mirror
window = preview.Preview.open()
if window is None:
    print("headless", flush=True)
    sys.exit(0)
message = preview.frame_advice(frame, preview.BadgeRead(None))
for _ in range(400):                                  # at most about 20 s
    window.show(frame, message)
    print("shown " + message, flush=True)
    if sys.stdin.readline().strip() == "done":
        break
window.close()
"""

DAMAGED = ("device.json is damaged: enroll this device again with a pairing code from a teacher or "
           "admin (My classes): python -m kiosk enroll --portal ")


def _read_xwd(path: Path) -> np.ndarray:
    """The screen, as BGR, from Xvfb's framebuffer file (XWD format, 32 bits per pixel)."""
    data = path.read_bytes()
    header = np.frombuffer(data[:100], ">u4")
    header_size, width, height = int(header[0]), int(header[4]), int(header[5])
    byte_order, bits_per_pixel, bytes_per_line = int(header[7]), int(header[11]), int(header[12])
    ncolors = int(header[19])
    assert bits_per_pixel == 32, bits_per_pixel
    start = header_size + 12 * ncolors
    pixels = np.frombuffer(data[start:start + bytes_per_line * height], np.uint8)
    pixels = pixels.reshape(height, bytes_per_line)[:, :width * 4].reshape(height, width, 4)
    return pixels[:, :, :3] if byte_order == 0 else pixels[:, :, 3:0:-1]


@pytest.fixture
def screen(tmp_path):
    """A private X server for this test (no TCP; its display number chosen by Xvfb)."""
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1024x768x24", "-nolisten", "tcp",
         "-fbdir", str(tmp_path), "-noreset"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as chosen:
            display = chosen.readline().strip()
        assert display, "Xvfb did not start"
        yield f":{display}", tmp_path / "Xvfb_screen0"
    finally:
        server.terminate()
        server.wait(10)


def _x(display: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, env={**os.environ, "DISPLAY": display}, capture_output=True,
                          text=True, timeout=20)


class Shower:
    """A child process that shows the preview window; it says "shown ..." after each frame and
    shows the next when told "more" (a line never comes when the window is stuck in a dialog)."""

    def __init__(self, display: str | None):
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        if display:
            env["DISPLAY"] = display
        env["QT_QPA_PLATFORM"] = "xcb"
        self.proc = subprocess.Popen([sys.executable, "-c", SHOW], cwd=ROOT, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def line(self, timeout: float = 15) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("the window stopped answering (a dialog?)") from None

    def more(self) -> str:
        self.proc.stdin.write("more\n")
        self.proc.stdin.flush()
        return self.line()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("done\n")
                self.proc.stdin.close()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def test_with_a_screen_the_window_shows_the_mirrored_picture_guide_box_and_advice(screen):
    display, framebuffer = screen
    shower = Shower(display)
    try:
        # What the child should see: the scene mirrored, the guide box, the advice.
        expected = preview.draw(_scene(), preview.TOO_DARK)
        line, best, deadline = shower.line(), 0.0, time.monotonic() + 20
        while True:
            assert line == "shown " + preview.TOO_DARK, f"no window: {line!r}"
            shown = _read_xwd(framebuffer)
            match = cv2.matchTemplate(shown, expected, cv2.TM_CCOEFF_NORMED)
            best = float(match.max())
            if os.environ.get("KEEP_SCREEN"):
                cv2.imwrite(os.environ["KEEP_SCREEN"], shown)
            if best >= 0.95 or time.monotonic() > deadline:
                break
            line = shower.more()
        assert best >= 0.95, f"the screen does not show the preview (best match {best:.2f})"
        # At its own size, in the window's top-left corner: no toolbar (whose buttons would
        # let a child save a frame) above it. Xvfb has no window manager: no title bar either.
        assert cv2.minMaxLoc(match)[3] == (0, 0)
    finally:
        shower.stop()


def test_the_window_has_no_keys_that_save_or_copy_a_frame(screen):
    # OpenCV's default Qt window answers Ctrl+S with a save dialog and Ctrl+C by putting the
    # camera picture on the clipboard, where the next paste would take it anywhere.
    display, _ = screen
    shower = Shower(display)
    try:
        assert shower.line().startswith("shown ")
        window = _x(display, "xdotool", "search", "--name", preview.WINDOW).stdout.split()
        assert len(window) == 1
        _x(display, "xdotool", "mousemove", "100", "100", "click", "1")   # a child taps it
        visible = _x(display, "xdotool", "search", "--onlyvisible", "--name", "").stdout.split()
        for key in ("ctrl+c", "ctrl+s", "ctrl+p"):
            _x(display, "xdotool", "key", key)
            for _ in range(10):                                          # let it answer
                assert shower.more().startswith("shown ")
        after = _x(display, "xdotool", "search", "--onlyvisible", "--name", "").stdout.split()
        assert after == visible, "a dialog opened"
        clipboard = _x(display, "xclip", "-selection", "clipboard", "-t", "TARGETS", "-o")
        assert "image" not in clipboard.stdout
    finally:
        shower.stop()


def _scene() -> np.ndarray:
    frame = np.full((480, 640, 3), 40, np.uint8)
    cv2.circle(frame, (160, 240), 60, (0, 160, 255), -1)
    return frame


def test_without_a_screen_there_is_no_window():
    shower = Shower(None)
    try:
        assert shower.line() == "headless"
    finally:
        shower.stop()


# The real kiosk program, with a camera that sees a plain wall (if it is opened: it must not
# be), a shorter time on screen (REVOKED_SHOW_SECONDS) and its credential in the folder given.
KIOSK = """
import sys
import kiosk.__main__ as program
from tests.kiosk.helpers import LiveCamera
program.REVOKED_SHOW_SECONDS = 15.0
camera = program.frames = LiveCamera([(60, None)])
try:
    status = program.main(["--portal", "http://127.0.0.1:9", "--config-dir", sys.argv[1]])
finally:
    print("camera opened" if hasattr(camera, "asked") else "camera never opened", flush=True)
sys.exit(status)
"""
WALL = np.full((480, 640, 3), 200, np.uint8)      # LiveCamera's frame when no one is there
BLANK = np.zeros((480, 640, 3), np.uint8)         # the kiosk's picture when it has none


# One case on the real screen, a damaged credential (the in-process tests in test_run.py take
# each of the five): the window stays up 15 s here, so that a slow start under load still shows
# it long enough to be seen.
def test_a_device_with_no_usable_credential_says_so_in_its_window(screen, tmp_path):
    """On a Chromebook in a classroom no one reads stderr: the window must say it."""
    display, framebuffer = screen
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "device.json").write_text('{"portal": "http')
    # The bottom of the picture: the line under it (the rest of a blank says nothing).
    band = preview.draw(BLANK, preview.NOT_ENROLLED)[-40:]
    assert cv2.matchTemplate(preview.draw(WALL, preview.HOLD_IN_BOX)[-40:], band,
                             cv2.TM_CCOEFF_NORMED).max() < 0.9
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    started = time.monotonic()
    kiosk = subprocess.Popen([sys.executable, "-c", KIOSK, str(folder)], cwd=ROOT, text=True,
                             env={**env, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"},
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        best, seen = 0.0, None
        while kiosk.poll() is None and best < 0.95:
            if framebuffer.exists():
                best = float(cv2.matchTemplate(_read_xwd(framebuffer), band,
                                               cv2.TM_CCOEFF_NORMED).max())
                seen = time.monotonic()
            time.sleep(0.1)
        out, err = kiosk.communicate(timeout=30)
    finally:
        if kiosk.poll() is None:
            kiosk.kill()
            kiosk.wait()
    assert best >= 0.95, f"the screen does not say it (best match {best:.2f}): {err[-600:]}"
    assert kiosk.returncode == 1
    assert DAMAGED in err.strip().splitlines()[-1]
    assert err.strip().endswith(" --code CODE")
    assert out.strip().splitlines() == ["camera never opened"]
    assert time.monotonic() - seen > 2       # it stayed up (15 s here) after being seen
    assert time.monotonic() - started < 60      # the window test may take up to 30 s under load
