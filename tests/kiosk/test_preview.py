"""kiosk.preview: the feedback a child sees, decided without a window (bench frames, seed 77)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from bench.badgeframes import BadgeScene
from kiosk import preview
from kiosk.decoder import NO_BADGE, SEVERAL_BADGES, BadgeRead, read_badge

pytestmark = pytest.mark.no_database


def gray(frame):
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def shot(condition, seed):
    return BadgeScene(condition, (640, 480), (77, seed)).frame().frame


def test_advice_order():
    assert preview.advice(SEVERAL_BADGES, 10.0, [0.05]) == preview.ONE_AT_A_TIME
    assert preview.advice(NO_BADGE, 20.0, [0.05]) == preview.TOO_DARK
    assert preview.advice(NO_BADGE, 120.0, [0.10]) == preview.CLOSER
    assert preview.advice(NO_BADGE, 120.0, [0.10, 0.30]) == preview.HOLD_IN_BOX
    assert preview.advice(NO_BADGE, 120.0, []) == preview.HOLD_IN_BOX


def test_brightness():
    assert preview.mean_brightness(np.full((480, 640), 30, np.uint8)) == 30
    dark = (shot("nominal", 1).astype(np.float32) * 0.15).astype(np.uint8)
    assert preview.frame_advice(dark, NO_BADGE) == preview.TOO_DARK
    assert preview.frame_advice(shot("nominal", 1), BadgeRead("spb1_x")) != preview.TOO_DARK


@pytest.mark.parametrize("seed", range(1, 6))
def test_a_badge_held_near_is_a_large_candidate(seed):
    sides = preview.qr_candidates(gray(shot("nominal", seed)))
    assert sides and max(sides) >= preview.CLOSER_BELOW


def test_a_far_badge_that_does_not_read_asks_to_come_closer():
    # Far badges the decoder could not read (bench seeds with a readable finder trio).
    asked = 0
    for seed in range(1, 30):
        frame = shot("small_far", seed)
        if read_badge(frame).found:
            continue
        sides = preview.qr_candidates(gray(frame))
        assert not sides or max(sides) < preview.CLOSER_BELOW
        asked += preview.frame_advice(frame, NO_BADGE) == preview.CLOSER
    assert asked >= 3


def test_a_room_without_a_qr_shows_no_candidate():
    empty = [scene for scene in (BadgeScene("none", (640, 480), (77, seed)) for seed in range(1, 40))
             if scene.note in ("empty", "blank card")]
    assert len(empty) >= 10
    for scene in empty:
        assert preview.qr_candidates(gray(scene.frame().frame)) == [], scene.note


def test_720p_frames_are_judged_like_480p():
    sides = preview.qr_candidates(gray(BadgeScene("nominal", (1280, 720), (77, 2)).frame().frame))
    assert sides and max(sides) >= preview.CLOSER_BELOW


def test_draw_mirrors_a_copy_and_leaves_the_frame_alone():
    frame = shot("nominal", 1)
    before = frame.copy()
    view = preview.draw(frame, preview.HOLD_IN_BOX)
    assert view.shape == frame.shape and np.array_equal(frame, before)
    assert preview.draw(gray(frame), preview.TOO_DARK).shape == frame.shape


def test_no_screen_no_window(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not preview.screen_present() and preview.Preview.open() is None
    assert preview.screen_present({"WAYLAND_DISPLAY": "wayland-0"})


def test_an_unreachable_display_means_headless_not_a_crash(monkeypatch):
    # OpenCV's Qt backend aborts the process on an X display it cannot reach.
    monkeypatch.setenv("DISPLAY", "127.0.0.1:987")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not preview.window_works()
    assert preview.Preview.open() is None


def test_a_kiosk_without_its_window_says_why_in_its_log(monkeypatch, caplog):
    # It ran all day without a window, and said nothing, when the window test timed out (a
    # Chromebook starting up) or the display could not be reached.
    monkeypatch.setenv("DISPLAY", "127.0.0.1:987")
    with caplog.at_level("WARNING"):
        assert not preview.window_works()
    assert "no window: the screen (DISPLAY=127.0.0.1:987) could not be used; running without a window" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert not preview.window_works(timeout=0.001)
    assert "no window: opening one took over 0 s; running without a window" in caplog.text
    assert preview.WINDOW_PROBE_SECONDS >= 30
