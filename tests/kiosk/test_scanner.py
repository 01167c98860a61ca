"""kiosk.scanner: which reads become sends (pure; the tests pass the time)."""
from __future__ import annotations

import pytest

from bench.badgeframes import BadgeScene, hide_card
from kiosk.decoder import NO_BADGE, SEVERAL_BADGES, BadgeRead, read_badge
from kiosk.scanner import Action, Scanner, Step

pytestmark = pytest.mark.no_database

A, B = BadgeRead("spb1_a"), BadgeRead("spb1_b")


def actions(scanner, reads):
    return [scanner.decide(read, t).action for t, read in reads]


def frames(read, start, seconds, fps=30):
    """(time, read) for each camera frame of `seconds` that shows `read`."""
    return [(start + i / fps, read) for i in range(round(seconds * fps))]


def sends(scanner, reads):
    return [t for t, read in reads if scanner.decide(read, t).action is Action.SEND]


def test_a_badge_held_in_view_is_sent_once_and_again_after_it_was_away():
    scanner = Scanner()
    step = scanner.decide(A, 0.0)
    assert step.action is Action.SEND and step.token == "spb1_a"
    assert sends(scanner, frames(A, 1 / 30, 12)) == []            # 12 s in view: no resend
    assert sends(scanner, frames(NO_BADGE, 12.1, 3)) == []        # out of view 3 s
    assert sends(scanner, frames(A, 15.1, 5)) == [15.1]           # back: sent once more


def test_frames_the_decoder_misses_are_not_away():
    scanner = Scanner()
    reads = frames(A, 0, 3) + frames(NO_BADGE, 3, 1.5) + frames(A, 4.5, 3)
    assert sends(scanner, reads) == [0]


def test_a_sent_badge_among_several_is_not_sent_again():
    scanner = Scanner()
    reads = frames(A, 0, 1) + frames(SEVERAL_BADGES, 1, 4) + frames(A, 5, 3)
    assert sends(scanner, reads) == [0]


def test_a_badge_is_away_while_another_is_in_view():
    scanner = Scanner()
    reads = frames(A, 0, 1) + frames(B, 1, 3) + frames(A, 4, 1)
    assert sends(scanner, reads) == [0, 1, 4]


def test_another_badge_goes_at_once():
    scanner = Scanner()
    assert actions(scanner, [(0.0, A), (0.5, B), (1.0, A)]) == [Action.SEND, Action.SEND, Action.REPEAT]


def test_several_badges_send_nothing_and_hold_a_moment():
    scanner = Scanner()
    assert actions(scanner, [(0.0, SEVERAL_BADGES), (0.3, A), (0.9, B)]) == [Action.SEVERAL] * 3
    assert scanner.decide(A, 1.2).action is Action.SEND


@pytest.mark.parametrize("size, seed, how", [((640, 480), 3, "thumb"), ((1280, 720), 7, "blur")])
def test_a_badge_beside_one_that_cannot_be_read_signs_nobody_in(size, seed, how):
    held = BadgeScene("two_badges", size, (77, seed))
    hide_card(held.cards[1], how)
    scanner = Scanner()
    steps = [scanner.decide(read_badge(held.frame(i).frame), i / 30).action for i in range(30)]
    assert Action.SEND not in steps and Action.SEVERAL in steps


def test_nothing_in_view_is_nothing():
    assert Scanner().decide(NO_BADGE, 0.0).action is Action.NOTHING


def test_too_many_tries_pause_every_badge():
    scanner = Scanner()
    scanner.decide(A, 0.0)
    scanner.pause(0.0, 60)
    assert actions(scanner, [(1.0, B), (59.0, B)]) == [Action.PAUSED] * 2
    assert scanner.decide(B, 60.5).action is Action.SEND


def test_a_badge_held_through_too_many_tries_is_sent_when_the_wait_is_over():
    scanner = Scanner()
    assert scanner.decide(A, 0.0).action is Action.SEND
    scanner.pause(0.0, 10)          # what kiosk.__main__ does on "too many tries"
    scanner.forget("spb1_a")
    assert actions(scanner, [(1.0, A), (9.9, A), (10.1, A), (11.0, A)]) == [
        Action.PAUSED, Action.PAUSED, Action.SEND, Action.REPEAT]


def test_a_send_that_never_arrived_can_be_retried():
    scanner = Scanner()
    scanner.decide(A, 0.0)
    scanner.forget("spb1_a")
    assert scanner.decide(A, 0.5).action is Action.SEND


def test_steps_do_not_show_the_token():
    assert "spb1_a" not in repr(Scanner().decide(A, 0.0))


def waves(read, start, seconds, shown=1.0, away=2.5, fps=10):
    """(time, read) for each frame of a child waving `read`: in view `shown` s, away `away` s."""
    frame_times = [start + i / fps for i in range(round(seconds * fps))]
    return [(t, read if (t - start) % (shown + away) < shown else NO_BADGE) for t in frame_times]


def test_a_badge_waved_at_the_camera_signs_in_once_until_half_a_minute_has_passed():
    # Found by review: sent at every wave, 18 times a minute, each a new sign-in, until the
    # portal refused the working card as tried too often (10 per 5 minutes).
    scanner = Scanner()
    sent, again = [], []
    for t, read in waves(A, 0, 60):
        step = scanner.decide(read, t)
        if step.action is Action.SEND:
            sent.append(round(t, 1))
            scanner.signed_in(step.token, t)     # what the kiosk does when the portal accepts
        elif step.action is Action.AGAIN:        # the kiosk asks if its browser lost its binding
            again.append(round(t, 1))
        elif read.found:
            assert step.action is Action.REPEAT  # the window keeps saying it worked
    assert sent == [0, 31.5]
    # Once each time it is held up again (not at every frame it is in view).
    assert again == [3.5, 7, 10.5, 14, 17.5, 21, 24.5, 28, 35, 38.5, 42, 45.5, 49, 52.5, 56, 59.5]


def test_a_badge_held_up_again_whose_sign_in_never_reached_the_child_is_sent_again():
    # The portal saw the hand-off opened in a browser that lost its binding: the kiosk binds it
    # again and forgets the sign-in, and the badge still held up goes (test_bind_again, whole).
    scanner = Scanner()
    assert scanner.decide(A, 0.0).action is Action.SEND
    scanner.signed_in("spb1_a", 0.2)
    assert scanner.decide(NO_BADGE, 1.0).action is Action.NOTHING
    assert scanner.decide(A, 3.5) == Step(Action.AGAIN, "spb1_a")
    assert scanner.decide(A, 3.6).action is Action.REPEAT
    scanner.forget_signed_in()
    scanner.forget("spb1_a")
    assert scanner.decide(A, 3.7) == Step(Action.SEND, "spb1_a")


def test_a_badge_that_signed_in_goes_again_after_another_badge():
    scanner = Scanner()
    assert scanner.decide(A, 0.0).action is Action.SEND
    scanner.signed_in("spb1_a", 0.2)
    assert sends(scanner, frames(NO_BADGE, 1, 3) + frames(A, 4, 1)) == []
    assert sends(scanner, frames(B, 5, 1) + frames(NO_BADGE, 6, 3) + frames(A, 9, 1)) == [5, 9]


def test_a_refused_badge_waved_again_is_sent_again():
    # Only a sign-in holds a badge back: the portal's answer to a card that did not work may
    # change (a teacher fixed something), and a new try costs nothing but a scan.
    scanner = Scanner()
    assert sends(scanner, waves(A, 0, 7)) == [0, 3.5]
