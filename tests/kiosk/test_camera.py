"""kiosk.camera: frames from a video file, released at the end; a missing source is an error; a
camera that drops a frame, stops for a while or comes late is read again, and one that never
comes back is an error."""
from __future__ import annotations

import itertools
import time
from contextlib import closing

import cv2
import numpy as np
import pytest

from bench.badgeframes import BadgeScene
from kiosk.camera import CameraError, frames
from kiosk.decoder import read_badge

pytestmark = pytest.mark.no_database

DAMAGED = ("device.json is damaged: enroll this device again with a pairing code from a teacher or "
           "admin (My classes): python -m kiosk enroll --portal ")


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


# --- a camera (by index) that misbehaves: a stand-in for cv2.VideoCapture ----------------------

class FlakyCamera:
    """cv2.VideoCapture for camera indexes: `script` says, read by read across every opening,
    True (a frame), False (a failed read); None for "cannot be opened" is `unopenable` opens."""

    opened = 0

    def __init__(self, script, unopenable=0):
        self.script, self.unopenable, self.reads = list(script), unopenable, 0

    def __call__(self, index):
        FlakyCamera.opened += 1
        camera = self

        class Capture:
            def isOpened(self):
                return FlakyCamera.opened > camera.unopenable

            def set(self, *args):
                return True

            def read(self):
                camera.reads += 1
                good = camera.script.pop(0) if camera.script else False
                return good, (np.full((48, 64, 3), 200, np.uint8) if good else None)

            def release(self):
                pass
        return Capture()


@pytest.fixture
def flaky(monkeypatch):
    import kiosk.camera as camera
    FlakyCamera.opened = 0
    monkeypatch.setattr(camera, "GIVE_UP_SECONDS", 0.6, raising=False)

    def use(script, unopenable=0):
        fake = FlakyCamera(script, unopenable)
        monkeypatch.setattr(camera.cv2, "VideoCapture", fake)
        return fake
    return use


def _take(stream, count):
    return ["frame" if f is not None else None for f in itertools.islice(stream, count)]


def test_one_dropped_frame_is_read_again_not_the_end(flaky):
    """A driver dropping one frame (V4L2 on a USB hiccup) used to stop the kiosk, exit 0."""
    flaky([True] * 3 + [False] + [True] * 3)
    with closing(frames(0)) as stream:
        assert _take(stream, 6) == ["frame"] * 6
    assert FlakyCamera.opened == 1


def test_a_camera_that_stops_for_a_while_is_opened_again(flaky):
    flaky([True, False, False, False, False, True, True])
    with closing(frames(0)) as stream:
        shown = _take(stream, 6)
    # Read again at once, then None (the window says so) while it is opened again, and again.
    assert shown == ["frame", None, None, None, "frame", "frame"]
    assert FlakyCamera.opened == 4


def test_a_camera_plugged_in_late_is_waited_for(flaky):
    flaky([True, True], unopenable=2)
    with closing(frames(0)) as stream:
        assert _take(stream, 4) == [None, None, "frame", "frame"]


def test_a_camera_that_never_comes_back_is_a_camera_error(flaky):
    flaky([True])
    started = time.monotonic()
    with closing(frames(0)) as stream, pytest.raises(CameraError, match="camera 0 stopped working"):
        list(stream)
    assert time.monotonic() - started < 3
    flaky([], unopenable=10 ** 6)
    with closing(frames(0)) as stream, pytest.raises(CameraError, match="could not open camera 0"):
        list(stream)


def test_the_kiosk_says_the_camera_is_not_working_then_stops_with_a_message(flaky, monkeypatch,
                                                                            tmp_path, capsys):
    import kiosk.__main__ as program
    from kiosk import preview as screen
    from tests.kiosk.helpers import FakeWindow, RecordingPortal, save_device
    flaky([True] * 10)
    window = FakeWindow()
    monkeypatch.setattr(program.screen.Preview, "open", staticmethod(lambda *a, **k: window))
    monkeypatch.setattr(program.webbrowser, "open", lambda *a, **k: True)
    with RecordingPortal() as portal:
        save_device(tmp_path, portal.url, 7, portal.credential)
        status = program.main(["--portal", portal.url, "--config-dir", str(tmp_path)])
    assert status == 1
    assert screen.NO_CAMERA in window.lines
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "kiosk: camera 0 stopped working: check its cable, then start the kiosk again")


@pytest.mark.parametrize("device", ["damaged", "unknown"])
def test_a_device_to_set_up_again_says_so_even_with_a_broken_camera(flaky, monkeypatch, tmp_path,
                                                                    capsys, device):
    """A damaged credential and a broken camera: the window said "The camera isn't working"
    (and a device the portal no longer knows stopped after a minute, when the camera gave up,
    with the camera's line and status 1), when no camera fix helps until the device is set up
    again. The set-up line wins: the camera is
    not opened for a credential that cannot be used, and is closed once the portal refuses the
    device."""
    import kiosk.__main__ as program
    import kiosk.camera as camera
    from kiosk import preview as screen
    from tests.kiosk.helpers import FakeWindow, RecordingPortal, save_device
    flaky([], unopenable=10 ** 6)                            # never opens
    monkeypatch.setattr(camera, "GIVE_UP_SECONDS", 60.0)     # as in a classroom: it keeps trying
    monkeypatch.setattr(program, "REVOKED_SHOW_SECONDS", 2.0)
    window = FakeWindow()
    monkeypatch.setattr(program.screen.Preview, "open", staticmethod(lambda *a, **k: window))
    monkeypatch.setattr(program.webbrowser, "open", lambda *a, **k: True)
    with RecordingPortal() as portal:
        if device == "damaged":
            (tmp_path / "device.json").write_text('{"portal": "http')
        else:
            save_device(tmp_path, portal.url, 7, "kd1_" + "u" * 43)   # not the portal's
        status = program.main(["--portal", portal.url, "--config-dir", str(tmp_path)])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    # Until the portal's answer, the camera's line was the news; from then on, this one.
    assert window.lines[-1] == screen.NOT_ENROLLED
    assert window.closed_at - window.when(screen.NOT_ENROLLED) > 1.5     # and it stayed
    if device == "damaged":
        assert window.lines == [screen.NOT_ENROLLED] and FlakyCamera.opened == 0
        assert status == 1 and DAMAGED in last
        assert last.endswith(" --code CODE")
    else:
        assert [r.path for r in portal.requests] == ["/kiosk/bind"]
        assert status == 3 and "the portal no longer knows this device" in last
