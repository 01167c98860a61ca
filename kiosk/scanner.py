"""What to do with each frame's read: send the token, or not. Pure: the caller passes the time.

- One badge in view: send its token, unless the same badge was sent in the last RESEND_SECONDS
  (a child keeps holding it up while the browser opens).
- Several badges: sign in nobody, and keep waiting SEVERAL_HOLD_SECONDS after the last frame
  that showed several, so a frame in which one of two badges is missed does not sign its
  holder in.
- After "too many tries" from the portal: send nothing until its Retry-After has passed.
Tokens are kept in memory only for the resend window.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from kiosk.decoder import BadgeRead

RESEND_SECONDS = 5.0
SEVERAL_HOLD_SECONDS = 1.0


class Action(Enum):
    NOTHING = "nothing"      # no badge in view
    SEND = "send"            # send step.token now
    SEVERAL = "several"      # two or more badges: ask for one at a time
    REPEAT = "repeat"        # the badge just sent is still in view
    PAUSED = "paused"        # waiting out the portal's "too many tries"


@dataclass(frozen=True)
class Step:
    action: Action
    token: str | None = field(default=None, repr=False)


class Scanner:
    """Turns badge reads into sends, one badge at a time, each badge at most every few seconds."""

    def __init__(self, resend_seconds: float = RESEND_SECONDS,
                 several_hold_seconds: float = SEVERAL_HOLD_SECONDS):
        self.resend_seconds = resend_seconds
        self.several_hold_seconds = several_hold_seconds
        self._sent: dict[str, float] = {}
        self._several_at: float | None = None
        self._paused_until: float | None = None

    def decide(self, read: BadgeRead, now: float) -> Step:
        """The step for this frame's read, seen at monotonic time `now`."""
        self._sent = {t: at for t, at in self._sent.items() if now - at < self.resend_seconds}
        if read.several:
            self._several_at = now
            return Step(Action.SEVERAL)
        if not read.found:
            return Step(Action.NOTHING)
        if self._several_at is not None and now - self._several_at < self.several_hold_seconds:
            return Step(Action.SEVERAL)
        if self._paused_until is not None and now < self._paused_until:
            return Step(Action.PAUSED)
        if read.token in self._sent:
            return Step(Action.REPEAT)
        self._sent[read.token] = now
        return Step(Action.SEND, read.token)

    def pause(self, now: float, seconds: float) -> None:
        """Send nothing for `seconds` (the portal said too many tries)."""
        self._paused_until = now + seconds

    def forget(self, token: str) -> None:
        """Let this badge be sent again at once (its send never reached the portal)."""
        self._sent.pop(token, None)
