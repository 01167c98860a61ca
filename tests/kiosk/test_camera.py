"""kiosk.camera: frames from a video file, released at the end; a missing source is an error."""
from __future__ import annotations

from contextlib import closing

import cv2
import pytest

from bench.badgeframes import BadgeScene
from kiosk.camera import CameraError, frames
from kiosk.decoder import read_badge


@pytest.fixture
def badge_video(tmp_path):
    """A short synthetic clip of a held badge (generated frames, not a camera's)."""
    scene = BadgeScene("nominal", (640, 480), (77, 9))
    path = tmp_path / "badge.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    assert writer.isOpened()
    for i in range(5):
        writer.write(scene.frame(i).frame)
    writer.release()
    return path, scene.tokens[0]


def test_video_frames_come_out_in_order_until_the_end(badge_video):
    path, token = badge_video
    shots = list(frames(path))
    assert len(shots) == 5 and shots[0].shape == (480, 640, 3)
    assert read_badge(shots[0]).token == token


def test_closing_early_stops_the_stream(badge_video):
    path, _ = badge_video
    with closing(frames(path)) as stream:
        next(stream)
    with pytest.raises(StopIteration):
        next(stream)


def test_missing_video_is_a_camera_error(tmp_path):
    with pytest.raises(CameraError):
        next(frames(tmp_path / "missing.avi"))
