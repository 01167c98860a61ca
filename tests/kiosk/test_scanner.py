"""kiosk.scanner: which reads become sends (pure; the tests pass the time)."""
from __future__ import annotations

from kiosk.decoder import NO_BADGE, SEVERAL_BADGES, BadgeRead
from kiosk.scanner import Action, Scanner

A, B = BadgeRead("spb1_a"), BadgeRead("spb1_b")


def actions(scanner, reads):
    return [scanner.decide(read, t).action for t, read in reads]


def test_one_badge_is_sent_once_within_five_seconds():
    scanner = Scanner()
    step = scanner.decide(A, 0.0)
    assert step.action is Action.SEND and step.token == "spb1_a"
    assert actions(scanner, [(0.1, A), (2.0, A), (4.9, A)]) == [Action.REPEAT] * 3
    assert scanner.decide(A, 5.1).action is Action.SEND


def test_another_badge_goes_at_once():
    scanner = Scanner()
    assert actions(scanner, [(0.0, A), (0.5, B), (1.0, A)]) == [Action.SEND, Action.SEND, Action.REPEAT]


def test_several_badges_send_nothing_and_hold_a_moment():
    scanner = Scanner()
    assert actions(scanner, [(0.0, SEVERAL_BADGES), (0.3, A), (0.9, B)]) == [Action.SEVERAL] * 3
    assert scanner.decide(A, 1.2).action is Action.SEND


def test_nothing_in_view_is_nothing():
    assert Scanner().decide(NO_BADGE, 0.0).action is Action.NOTHING


def test_too_many_tries_pause_every_badge():
    scanner = Scanner()
    scanner.decide(A, 0.0)
    scanner.pause(0.0, 60)
    assert actions(scanner, [(1.0, B), (59.0, B)]) == [Action.PAUSED] * 2
    assert scanner.decide(B, 60.5).action is Action.SEND


def test_a_send_that_never_arrived_can_be_retried():
    scanner = Scanner()
    scanner.decide(A, 0.0)
    scanner.forget("spb1_a")
    assert scanner.decide(A, 0.5).action is Action.SEND


def test_steps_do_not_show_the_token():
    assert "spb1_a" not in repr(Scanner().decide(A, 0.0))
