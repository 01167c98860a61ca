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


# --- what a child who cannot read sees: colour and shape by state -----------------------------

ANSWERS = {
    preview.SIGNED_IN: "signed in",
    preview.REFUSED: "refused",
    preview.CLOSER: "advice",
    preview.ONE_AT_A_TIME: "advice",
    preview.TOO_DARK: "advice",
    preview.HOLD_IN_BOX: "waiting",      # the idle line, shown to an empty room all day
    preview.CHECKING: "waiting",
    preview.WAIT: "waiting",
}


def _box(view):
    h, w = view.shape[:2]
    side = int(preview.GUIDE * h)
    return (w - side) // 2, (h - side) // 2 - h // 20, side


def _looks(message, size=(720, 1280)):
    """The guide box's edge colour, the band's colour, and the box's picture at the tick's and
    the cross's points, over a plain mid-grey picture."""
    frame = np.full((*size, 3), 150, np.uint8)
    view = preview.draw(frame, message)
    x0, y0, side = _box(view)
    edge = tuple(int(c) for c in view[y0 + side // 2, x0 + 1])
    band = tuple(int(c) for c in view[view.shape[0] - 2, 3])

    def at(fx, fy):
        return tuple(int(c) for c in view[y0 + int(fy * side), x0 + int(fx * side)])
    return view, edge, band, at


def _lightness(bgr):
    return float(cv2.cvtColor(np.uint8([[bgr]]), cv2.COLOR_BGR2GRAY)[0, 0])


@pytest.mark.parametrize("message", sorted(ANSWERS))
def test_each_line_has_its_state(message):
    assert preview.state(message) == ANSWERS[message]


def test_the_box_and_band_are_coloured_by_state_and_differ_in_lightness_too():
    # "Hi! Look at the screen." and "That badge didn't work." differed only in grey words in a
    # black band; the box was white in every state.
    seen = {}
    for message, kind in ANSWERS.items():
        _, edge, band, _ = _looks(message)
        seen.setdefault(kind, set()).add((edge, band))
    assert all(len(looks) == 1 for looks in seen.values()), seen
    (waiting,), (advice,), (ok,), (refused,) = (seen[k] for k in (
        "waiting", "advice", "signed in", "refused"))
    assert waiting == ((255, 255, 255), (0, 0, 0))          # the neutral look, as before
    b, g, r = ok[0]
    assert g > 150 and g > r + 60 and g > b + 60, ok         # green
    b, g, r = refused[0]
    assert r > 150 and r > g + 80 and r > b + 80, refused    # red
    b, g, r = advice[0]
    assert r > 200 and g > 150 and b < 80, advice            # amber
    for looks in (advice, ok, refused):
        assert looks[0] == looks[1]                          # box and band alike
    levels = sorted(_lightness(looks[1]) for looks in (waiting, advice, ok, refused))
    assert all(b - a >= 40 for a, b in zip(levels, levels[1:])), levels
    for message in ANSWERS:     # the line is still written, in a colour that shows on its band
        view, _, band, _ = _looks(message)
        strip = view[view.shape[0] - 30:view.shape[0] - 10].reshape(-1, 3)
        assert (np.abs(strip.astype(int) - band).sum(axis=1) > 200).sum() > 200, message


@pytest.mark.parametrize("size", [(720, 1280), (480, 640)])
def test_a_sign_in_shows_a_tick_and_a_refusal_a_cross(size):
    _, ok, _, tick = _looks(preview.SIGNED_IN, size)
    _, no, _, cross = _looks(preview.REFUSED, size)
    plain = (150, 150, 150)
    # The tick: its corner and both arms' middles; the box's centre and top left stay clear.
    for point in [(0.42, 0.77), (0.31, 0.66), (0.62, 0.51)]:
        assert tick(*point) == ok, point
    for point in [(0.5, 0.5), (0.3, 0.3), (0.7, 0.72)]:
        assert tick(*point) == plain, point
    # The cross: its centre and its four arms; the middles of the box's sides stay clear.
    for point in [(0.5, 0.5), (0.3, 0.3), (0.7, 0.7), (0.3, 0.7), (0.7, 0.3)]:
        assert cross(*point) == no, point
    for point in [(0.5, 0.15), (0.5, 0.85), (0.15, 0.5), (0.85, 0.5), (0.42, 0.77)]:
        assert cross(*point) == plain, point
    # Advice and waiting draw nothing over the picture in the box.
    frame = shot("nominal", 1)
    for message in (preview.CLOSER, preview.HOLD_IN_BOX, preview.CHECKING):
        view = preview.draw(frame, message)
        x0, y0, side = _box(view)
        inside = (slice(y0 + side // 10, y0 + side - side // 10),
                  slice(x0 + side // 10, x0 + side - side // 10))
        assert np.array_equal(view[inside], cv2.flip(frame, 1)[inside]), message
