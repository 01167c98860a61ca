"""Frames from OpenCV: a camera by index, or a video file (for tests). Frames stay in memory.

A camera's driver may drop a frame (a USB hiccup, a select() time-out): it is read again at
once. When reads go on failing, or the camera cannot be opened (yet: at boot it may appear a
moment after the kiosk starts), the camera is released and opened again, waiting a little
longer each time (RETRY_FIRST_SECONDS, doubling up to RETRY_MAX_SECONDS), and None is yielded
in between so that the caller can say so on screen. After GIVE_UP_SECONDS without a frame it is
a CameraError. A video file that ends has simply ended.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

RETRY_FIRST_SECONDS = 0.1
RETRY_MAX_SECONDS = 1.0
GIVE_UP_SECONDS = 60.0


class CameraError(RuntimeError):
    """The camera or video could not be opened, or the camera stopped working for good."""


def frames(source: int | str | Path, *, width: int | None = None,
           height: int | None = None) -> Iterator[np.ndarray | None]:
    """Yield BGR frames from `source` until it ends (a camera: None while it is not working);
    the device is released when the generator finishes or is closed (use `contextlib.closing`
    or close() to stop early)."""
    if isinstance(source, int):
        return _camera(source, width, height)
    return _video(Path(source))


def _video(path: Path) -> Iterator[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise CameraError(f"could not open video {path}")
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        capture.release()


def _open_camera(index: int, width: int | None, height: int | None):
    capture = cv2.VideoCapture(index)
    if capture.isOpened():
        # The newest frame, not a queue of old ones: a badge is read as soon as it is shown.
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        if width and height:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    return capture


def _camera(index: int, width: int | None, height: int | None) -> Iterator[np.ndarray | None]:
    capture = _open_camera(index, width, height)
    ever_read = False
    failing_since: float | None = None
    wait = RETRY_FIRST_SECONDS
    try:
        while True:
            ok, frame = capture.read() if capture.isOpened() else (False, None)
            if ok:
                ever_read, failing_since, wait = True, None, RETRY_FIRST_SECONDS
                yield frame
                continue
            now = time.monotonic()
            if failing_since is None and capture.isOpened():
                failing_since = now          # one dropped frame: read again at once
                continue
            failing_since = now if failing_since is None else failing_since
            if now - failing_since >= GIVE_UP_SECONDS:
                if ever_read:
                    raise CameraError(f"camera {index} stopped working: check its cable, then "
                                      f"start the kiosk again")
                raise CameraError(f"could not open camera {index}: check that it is plugged in "
                                  f"(--camera N picks another)")
            yield None
            time.sleep(wait)
            wait = min(wait * 2, RETRY_MAX_SECONDS)
            capture.release()
            capture = _open_camera(index, width, height)
    finally:
        capture.release()
