"""kiosk.decoder on generated frames (bench/badgeframes.py): what counts as a badge read."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import zxingcpp

from bench.badgeframes import BadgeScene, bad_checksum, hide_card, qr_image, seeded_token
from kiosk.decoder import NO_BADGE, SEVERAL_BADGES, BadgeRead, read_badge
from kiosk.finders import finder_groups, finder_patterns

pytestmark = pytest.mark.no_database

VGA, HD = (640, 480), (1280, 720)


def scene(condition, size=VGA, seed=1):
    return BadgeScene(condition, size, (77, seed))


def card_frame(texts, size=VGA) -> np.ndarray:
    """A plain wall with printed QRs side by side, each holding one of `texts`."""
    frame = np.full((size[1], size[0], 3), 200, np.uint8)
    for i, text in enumerate(texts):
        qr = cv2.resize(qr_image(text, module=6), (180, 180), interpolation=cv2.INTER_AREA)
        x, y = 60 + i * 260, 140
        frame[y:y + 180, x:x + 180] = qr[..., None]
    return frame


def bare_zxing(frame) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(frame, formats=zxingcpp.BarcodeFormat.QRCode)]


@pytest.mark.parametrize("size", [VGA, HD])
def test_reads_held_badge(size):
    shot = scene("nominal", size).frame()
    assert read_badge(shot.frame) == BadgeRead(shot.tokens[0])


@pytest.mark.parametrize("condition", ["rotated", "tilted"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reads_rotated_and_tilted_badge(condition, seed):
    shot = scene(condition, seed=seed).frame()
    assert read_badge(shot.frame).token == shot.tokens[0]


@pytest.mark.parametrize("yaw, pitch", [(-50, -39), (56, 39)])
@pytest.mark.parametrize("seed", [2, 3])
def test_reads_steeply_tilted_badge_zxing_cannot_place(yaw, pitch, seed):
    held = scene("tilted", HD, seed)
    pose = held.cards[0]["pose"]
    pose.yaw, pose.pitch, pose.roll = yaw, pitch, 0.0
    shot = held.frame()
    assert bare_zxing(shot.frame) == []      # zxing finds the QR but misjudges its size
    assert read_badge(shot.frame).token == shot.tokens[0]


def test_finder_patterns_place_a_printed_qr_among_look_alikes():
    frame = cv2.cvtColor(card_frame([seeded_token(np.random.default_rng(9))]), cv2.COLOR_BGR2GRAY)
    for x in (400, 470, 540):    # a row of finder-like squares, larger than the QR's
        frame[300:335, x:x + 35] = 0
        frame[305:330, x + 5:x + 30] = 255
        frame[310:325, x + 10:x + 25] = 0
    marks = finder_patterns(frame)
    assert len(marks) >= 3
    y0, y1, x0, x1 = finder_groups(marks)[0]
    assert y0 <= 140 + 24 and y1 >= 140 + 180 - 24 and x0 <= 60 + 24 and x1 >= 60 + 180 - 24


def test_reads_gray_and_bgra_frames():
    shot = scene("nominal").frame()
    token = shot.tokens[0]
    assert read_badge(cv2.cvtColor(shot.frame, cv2.COLOR_BGR2GRAY)).token == token
    assert read_badge(cv2.cvtColor(shot.frame, cv2.COLOR_BGR2BGRA)).token == token


def test_no_badge_on_empty_frames():
    assert read_badge(np.zeros((720, 1280, 3), np.uint8)) == NO_BADGE
    kinds = set()
    for seed in range(12):   # clutter, a card's back, a poster QR, a forged badge
        empty = scene("none", seed=seed)
        kinds.add(empty.note)
        assert read_badge(empty.frame().frame) == NO_BADGE, empty.note
    assert kinds == {"empty", "blank card", "other QR", "bad checksum"}


def test_qr_that_is_not_a_badge_is_ignored():
    frame = card_frame(["https://lincoln-elementary.example/library"])
    assert bare_zxing(frame) == ["https://lincoln-elementary.example/library"]
    assert read_badge(frame) == NO_BADGE


def test_badge_shaped_string_with_wrong_checksum_is_ignored():
    forged = bad_checksum(seeded_token(np.random.default_rng(5)))
    frame = card_frame([forged])
    assert bare_zxing(frame) == [forged]
    assert read_badge(frame) == NO_BADGE


def test_two_badges_in_view_are_several():
    shot = scene("two_badges").frame()
    assert len(set(shot.tokens)) == 2
    assert read_badge(shot.frame) == SEVERAL_BADGES


def test_two_printed_badges_are_several_and_a_url_beside_one_is_not():
    rng = np.random.default_rng(6)
    one, two = seeded_token(rng), seeded_token(rng)
    assert read_badge(card_frame([one, two])) == SEVERAL_BADGES
    assert read_badge(card_frame([one, "https://example.org/"])).token == one


@pytest.mark.parametrize("size, seed, how, sigma", [
    (VGA, 1, "thumb", 0), (VGA, 6, "thumb", 0), (HD, 2, "thumb", 0), (HD, 8, "thumb", 0),
    (HD, 1, "blur", 3), (HD, 6, "blur", 3), (VGA, 4, "blur", 2), (HD, 2, "blur", 2),
])
def test_a_badge_beside_one_that_cannot_be_read_is_several(size, seed, how, sigma):
    held = scene("two_badges", size, seed)
    hide_card(held.cards[1], how, sigma)
    shot = held.frame()
    assert bare_zxing(shot.frame) == [shot.tokens[0]]    # the other badge is not read
    assert read_badge(shot.frame) == SEVERAL_BADGES


@pytest.mark.parametrize("timing", [False, True])
def test_two_finder_marks_beside_a_badge_are_a_second_badge_only_with_a_timing_pattern(timing):
    token = seeded_token(np.random.default_rng(10))
    frame = card_frame([token])
    for x in (330, 445):    # two marks the size of the QR's, as far apart as its corners
        frame[200:231, x:x + 31] = 0
        frame[204:227, x + 4:x + 27] = 255
        frame[209:222, x + 9:x + 22] = 0
    if timing:              # what a thumb leaves of a QR: modules alternating between them
        module = (445 - 330) / 26
        for i in range(8, 25, 2):
            x = int(345 + (i - 3.5) * module)
            frame[226:230, x:x + int(module)] = 0
    assert read_badge(frame) == (SEVERAL_BADGES if timing else BadgeRead(token))


def test_the_same_badge_twice_is_one_badge():
    token = seeded_token(np.random.default_rng(7))
    assert read_badge(card_frame([token, token])).token == token


def test_read_hides_the_token_from_repr():
    token = seeded_token(np.random.default_rng(8))
    read = read_badge(card_frame([token]))
    assert read.found and token not in repr(read)


def test_rejects_what_is_not_an_image():
    with pytest.raises(ValueError):
        read_badge(np.zeros((48, 64), np.float32))
