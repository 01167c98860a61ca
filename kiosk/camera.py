"""Frames from OpenCV: a camera by index, or a video file (for tests). Frames stay in memory."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np


class CameraError(RuntimeError):
    """The camera or video could not be opened."""


def frames(source: int | str | Path, *, width: int | None = None,
           height: int | None = None) -> Iterator[np.ndarray]:
    """Yield BGR frames from `source` until it ends; the device is released when the generator
    finishes or is closed (use `contextlib.closing` or close() to stop early)."""
    capture = cv2.VideoCapture(source if isinstance(source, int) else str(source))
    try:
        if not capture.isOpened():
            raise CameraError(f"could not open {'camera' if isinstance(source, int) else 'video'} {source}")
        if isinstance(source, int):
            # The newest frame, not a queue of old ones: a badge is read as soon as it is shown.
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            if width and height:
                capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        capture.release()
