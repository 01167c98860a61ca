"""What to do with each frame's read: send the token, or not. Pure: the caller passes the time.

- One badge in view: send its token once, and not again while it stays in view, however long
  (a child keeps holding it up while the browser opens; each resend would sign them out and in
  again and restart a PIN page they are typing into). Once it has been out of view for
  AWAY_SECONDS it may be sent again: long enough that a few frames the decoder misses (glare,
  a fast turn; every bench clip is read within a second) are not "away", short enough that a
  child who lowers the badge and holds it up again is answered.
- A badge that just signed in is not sent again for AGAIN_SECONDS, in view or not, unless
  another badge was read meanwhile: a child waving their badge at the camera (in view a second,
  away a few) would otherwise sign in again at each wave, each a new page in the browser and one
  of the badge's scans the portal allows in five minutes, until it refused the working card. The
  kiosk says so (signed_in); a child who signs in again later, or after a classmate, is answered.
  Held up again meanwhile (after being away), it is AGAIN, once: the kiosk asks the portal
  whether its browser lost its binding (the sign-in then never reached the child), and if so
  binds it again and sends the badge (forget_signed_in).
- Several badges: sign in nobody, and keep waiting SEVERAL_HOLD_SECONDS after the last frame
  that showed several, so a frame in which one of two badges is missed does not sign its
  holder in. A badge already sent is not away meanwhile: it may be one of them.
- After "too many tries" from the portal: send nothing until its Retry-After has passed; the
  badge that met it is forgotten (the portal did not look at it), so a child still holding it
  up when the wait is over is signed in then without lowering it first.
- After no answer, or "unavailable": the same, for the portal's Retry-After (else
  OFFLINE_FIRST_SECONDS); from the second time in a row on, for at least OFFLINE_FIRST_SECONDS,
  twice as long each time; never for more than OFFLINE_MAX_SECONDS. A blip of a second costs a
  few seconds, an outage is not asked 30 times a second, and the kiosk is never deaf for long
  once the portal is back.
Tokens are kept in memory only while their badge is in view, and AWAY_SECONDS after (the one
that last signed in, AGAIN_SECONDS after).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from kiosk.decoder import BadgeRead

AWAY_SECONDS = 2.0
AGAIN_SECONDS = 30.0
SEVERAL_HOLD_SECONDS = 1.0
OFFLINE_FIRST_SECONDS = 3.0
OFFLINE_MAX_SECONDS = 15.0


class Action(Enum):
    NOTHING = "nothing"      # no badge in view
    SEND = "send"            # send step.token now
    SEVERAL = "several"      # two or more badges: ask for one at a time
    REPEAT = "repeat"        # a badge already sent is still in view
    AGAIN = "again"          # the badge that just signed in, held up again: step.token
    PAUSED = "paused"        # waiting out the portal's "too many tries", or its absence, or
                             # its answer to the badge before (or the browser's binding)


@dataclass(frozen=True)
class Step:
    action: Action
    token: str | None = field(default=None, repr=False)


class Scanner:
    """Turns badge reads into sends, one badge at a time, each once while it stays in view."""

    def __init__(self, away_seconds: float = AWAY_SECONDS,
                 several_hold_seconds: float = SEVERAL_HOLD_SECONDS,
                 again_seconds: float = AGAIN_SECONDS):
        self.away_seconds = away_seconds
        self.again_seconds = again_seconds
        self._signed_in: tuple[str, float] | None = None   # the badge that last signed in, when
        self.several_hold_seconds = several_hold_seconds
        self._sent: dict[str, float] = {}     # token sent -> when it was last seen
        self._several_at: float | None = None
        self._paused_until: float | None = None
        self.offline = 0                      # sends in a row that had no answer
        self.busy = False                     # a request is under way, or none may be sent

    def decide(self, read: BadgeRead, now: float) -> Step:
        """The step for this frame's read, seen at monotonic time `now`."""
        self._sent = {t: at for t, at in self._sent.items() if now - at < self.away_seconds}
        if read.several:
            # A badge already sent may be one of them: it is not away while several are in view.
            self._sent = dict.fromkeys(self._sent, now)
            self._several_at = now
            return Step(Action.SEVERAL)
        if not read.found:
            return Step(Action.NOTHING)
        last = self._signed_in
        if last is not None and (read.token != last[0] or now - last[1] >= self.again_seconds):
            self._signed_in = last = None      # another badge, or long enough ago
        if read.token in self._sent:
            self._sent[read.token] = now       # still in view: the time away starts again
            return Step(Action.REPEAT)
        if last is not None:                   # back again soon after it signed in
            self._sent[read.token] = now       # AGAIN once each time it is held up
            return Step(Action.AGAIN, read.token)
        if self._several_at is not None and now - self._several_at < self.several_hold_seconds:
            return Step(Action.SEVERAL)
        if self.busy or (self._paused_until is not None and now < self._paused_until):
            return Step(Action.PAUSED)
        self._sent[read.token] = now
        return Step(Action.SEND, read.token)

    def pause(self, now: float, seconds: float) -> None:
        """Send nothing for `seconds` (the portal said too many tries, or did not answer)."""
        self._paused_until = now + seconds


    def wait_offline(self, now: float, retry_after: float = OFFLINE_FIRST_SECONDS) -> float:
        """No answer, or "unavailable": pause, longer each time in a row (capped); the seconds."""
        self.offline += 1
        backoff = OFFLINE_FIRST_SECONDS * 2 ** min(self.offline - 2, 8) if self.offline > 1 else 0
        seconds = min(OFFLINE_MAX_SECONDS, max(retry_after, backoff))
        self.pause(now, seconds)
        return seconds

    def answered(self) -> None:
        """The portal answered: the next time it does not, the wait starts short again."""
        self.offline = 0

    def signed_in(self, token: str, now: float) -> None:
        """The portal signed this badge's student in (at `now`): see AGAIN_SECONDS."""
        self._signed_in = (token, now)

    def forget_signed_in(self) -> None:
        """The last sign-in did not reach the child (the browser lost its binding): their badge
        may be sent again."""
        self._signed_in = None

    def forget(self, token: str) -> None:
        """Let this badge be sent again at once (its send never reached the portal)."""
        self._sent.pop(token, None)
