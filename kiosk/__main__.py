"""`python -m kiosk`: enroll this device once, then run the badge kiosk.

    python -m kiosk enroll --portal URL --code CODE [--config-dir DIR]
    python -m kiosk --portal URL [--camera N | --video FILE] [--no-browser | --chromium PATH]
                    [--once] [--config-dir DIR]

At start-up the kiosk binds the device's browser (opens the portal's bind link); while the
portal cannot be reached (a kiosk started before the network is up) it says so and tries again,
waiting longer each time (at most 15 s). Then each camera frame is decoded in memory; one
badge's token is sent to the portal, and the hand-off link it answers with opens in the browser,
which signs the student in. When the portal answers that the browser is not (or no longer)
bound, the kiosk opens a new bind link and sends the badge again once the browser had a moment
to open it. --no-browser prints the links instead. --chromium PATH starts that Chromium with a
profile of its own and opens each link there in place of every page it had open (kiosk/browser.py). --once stops after the first sign-in (or
when the --video ends).

Exit status: 0 done, 1 a failure (said in one line), 2 bad arguments, 3 the portal no longer
knows this device (enroll it again; with a screen, the window says so for 5 minutes first). A
device whose stored credential is missing or damaged stops with 1, and with a screen its window
also says first, for 5 minutes, that it must be set up again. Meanwhile the camera is off
(closed, or never opened): no frame is read, decoded or sent, and a broken camera cannot hide
that message.
Logs never show a token, a credential or a picture.
"""
from __future__ import annotations

import argparse
import logging
import math
import shlex
import sys
import time
import webbrowser
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import closing

import numpy as np

from kiosk import credentials, preview as screen
from kiosk.browser import BrowserError, Chromium
from kiosk.camera import CameraError, frames
from kiosk.client import (
    BadgeRefused, BindAgain, DeviceRefused, PairingRefused, PortalClient, PortalError,
    PortalUnreachable, TooManyTries, plain, portal_base, same_portal,
)
from kiosk.credentials import CredentialError, Device
from kiosk.decoder import NO_BADGE, read_badge
from kiosk.scanner import Action, Scanner

log = logging.getLogger("kiosk")

EXIT_FAILED, EXIT_USAGE, EXIT_REENROLL = 1, 2, 3
MESSAGE_SECONDS = 3.0     # an answer from the portal stays on screen this long
OFFLINE_TELL_AFTER = 3    # sends in a row without an answer before the child is told to ask
# After binding the browser again, the kiosk sends nothing for this long: the browser opens the
# bind link meanwhile, and a badge still held up is sent again after it.
REBIND_SECONDS = 3.0
# A device the portal no longer knows, or whose stored credential cannot be used, keeps saying
# so on its screen this long (or until the window is closed), with its camera off, then stops
# (EXIT_REENROLL, EXIT_FAILED); without a screen it stops at once.
REVOKED_SHOW_SECONDS = 300.0
SHOWN_AGAIN_SECONDS = 1.0   # meanwhile, the message is drawn again this often (nothing else is)


class Failure(Exception):
    """Stop with this one-line reason."""

    def __init__(self, message: str, status: int = EXIT_FAILED):
        super().__init__(message)
        self.status = status


def _enroll_hint(portal: str) -> str:
    return f"python -m kiosk enroll --portal {portal} --code CODE"


AGAIN = "enroll this device again"


def _enroll_advice(portal: str, what: str = "enroll it") -> str:
    """How to enroll this device, for whoever reads the kiosk's last line: where the code comes
    from as well as the command."""
    return f"{what} with a pairing code from a teacher or admin (My classes): {_enroll_hint(portal)}"


# --- enroll ---------------------------------------------------------------------------------

def enroll(args) -> int:
    """Trade a pairing code for this device's credential and store it."""
    base = _base(args.portal)
    folder = credentials.config_dir(args.config_dir)
    client = PortalClient(base)
    try:
        answer = client.enroll(args.code)
    except PairingRefused as e:
        raise Failure(str(e)) from None
    except PortalError as e:
        raise Failure(f"could not enroll: {e}") from None
    finally:
        client.close()
    device = Device(portal=base, **answer)
    try:
        path = credentials.save(folder, device)
    except CredentialError as e:
        raise Failure(str(e)) from None
    # The name and school are the portal's words: printed through plain(), never raw.
    print(f"Enrolled as {plain(device.name)!r} at {plain(device.school)}. Credential saved in "
          f"{path} (only this user can read it).", flush=True)
    again = f" --config-dir {shlex.quote(args.config_dir)}" if args.config_dir else ""
    print(f"Start the kiosk with: python -m kiosk --portal {base}{again}", flush=True)
    return 0


# --- run ------------------------------------------------------------------------------------

class Feedback:
    """The line for the child: the portal's last answer for a few seconds (and for as long as
    the badge it answered stays in view), else a steady line while the kiosk waits (hold), else
    live advice. Without a window, each new line is printed once."""

    def __init__(self, window: screen.Preview | None):
        self.window = window
        self.event: str | None = None
        self.event_until = 0.0
        self.answer: str | None = None     # the portal's answer to the badge last sent
        self.held: str | None = None
        self.held_until = 0.0
        self.trouble: str | None = None    # shown before anything else while it lasts
        self.printed: str | None = None

    def say(self, message: str, now: float) -> None:
        self.event, self.event_until = message, now + MESSAGE_SECONDS
        self._print(message)

    def answered(self, message: str, now: float) -> None:
        """The portal's answer to the badge sent: shown while that badge stays in view."""
        self.answer = message
        self.say(message, now)

    def hold(self, message: str, until: float = math.inf) -> None:
        """Show `message` until `until` (the kiosk is waiting), rather than the usual advice."""
        self.event_until = 0.0
        self.held, self.held_until = message, until
        self._print(message)

    def release(self) -> None:
        self.held = None

    def camera_working(self, working: bool) -> None:
        """The camera gave a frame, or it did not (the window then says so)."""
        if not working and self.trouble is None:
            self._print(screen.NO_CAMERA)
        self.trouble = None if working else screen.NO_CAMERA

    def _print(self, message: str) -> None:
        if message != self.printed:
            print(message, flush=True)
            self.printed = message

    def show(self, frame, read, now: float, *, repeat: bool = False) -> bool:
        """Update the window (if any) for this frame; False when it was closed. `repeat`: the
        badge in view is the one last sent."""
        if read.several:
            self.say(screen.ONE_AT_A_TIME, now)
        if self.window is None:
            return True
        if self.trouble is not None:
            message = self.trouble
        elif self.event is not None and now < self.event_until:
            message = self.event
        elif self.held is not None and now < self.held_until:
            message = self.held
        elif repeat and self.answer is not None:
            message = self.answer
        else:
            message = screen.frame_advice(frame, read)
        return self.window.show(frame, message)


def _base(portal: str) -> str:
    try:
        return portal_base(portal)
    except ValueError as e:
        raise Failure(str(e), EXIT_USAGE) from None


def _open(url: str, what: str, no_browser: bool, browser: Chromium | None = None) -> None:
    """Open a one-time portal link in this device's browser (the kiosk's own Chromium, with
    --chromium), or print it."""
    if not no_browser and browser is not None:
        try:
            browser.show(url)
            return
        except BrowserError as e:
            log.warning("the kiosk's Chromium could not open the %s link (%s): printing it instead",
                        what, e)
    elif not no_browser:
        try:
            if webbrowser.open(url):
                return
        except webbrowser.Error:
            pass
        log.warning("no browser could be opened: printing the %s link instead", what)
    print(f"{what}: open {url} in this device's browser now", flush=True)


def _device(args, base: str) -> Device:
    folder = credentials.config_dir(args.config_dir)
    try:
        device = credentials.load(folder)
    except CredentialError as e:
        message = str(e)
        if message.endswith(AGAIN):      # the credential's own words: say how, too
            message = message[:-len(AGAIN)] + _enroll_advice(base, AGAIN)
        raise Failure(message) from None
    if device is None:
        raise Failure(f"this device is not enrolled: {_enroll_advice(base)}")
    if not same_portal(device.portal, base):
        raise Failure(f"this device is enrolled with {device.portal}, not {base}: "
                      f"{_enroll_advice(base, 'enroll it again')}")
    return device


def run(args) -> int:
    """Bind the browser, then read badges until stopped (or, with --once, the first sign-in)."""
    base = _base(args.portal)
    source = args.video if args.video is not None else args.camera
    try:
        device = _device(args, base)
    except Failure as failure:
        device, failure_of_device = None, failure
    window = screen.Preview.open()
    if device is None:
        # No credential this device can use (missing, damaged, another portal's): with a screen,
        # the window says so first, as for a device the portal no longer knows (a teacher must
        # see it), without opening the camera; headless, it stops at once. Either way it stops
        # with the same line.
        if window is not None:
            try:
                _say_not_enrolled(window, failure_of_device, _BLANK)
            finally:
                window.close()
        raise failure_of_device
    client = PortalClient(device.portal, device.credential)
    try:
        log.info("device %s (%s, %s)", device.device_id, plain(device.name), plain(device.school))
        return _scan(client, source, args, base, window)
    finally:
        client.close()


class Kiosk:
    """The kiosk's side of the portal, one request at a time: binding the browser (at start-up,
    again with a growing wait while the portal cannot be reached, and whenever the portal says
    the browser lost its binding) and sending badges. With a camera, requests run on a worker
    thread (each bounded by the client's DEADLINE), so the preview keeps moving and says
    "Checking your badge..." meanwhile; a video file, which has no time of its own, waits for
    each answer in line (live=False)."""

    def __init__(self, client: PortalClient | None, scanner: Scanner, feedback: Feedback, args,
                 base: str, *, live: bool):
        self.client, self.scanner, self.feedback = client, scanner, feedback
        self.args, self.base = args, base
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="kiosk-portal") if live else None
        self.job: tuple[str, str | None, Future] | None = None
        self.bound = False
        self.bind_due = 0.0
        self.binding_again = False
        self.unreachable: PortalError | None = None   # why the last bind failed
        self.stopping: Failure | None = None    # this device must be enrolled again
        chromium = getattr(args, "chromium", None)
        self.browser = None if chromium is None else Chromium(
            chromium, credentials.config_dir(args.config_dir) / "chromium",
            tuple(getattr(args, "chromium_flag", None) or ()))

    def close(self) -> None:
        if self.pool is not None:
            # A request under way ends within the client's DEADLINE; nothing waits for it here.
            self.pool.shutdown(wait=False, cancel_futures=True)
        if self.browser is not None:
            self.browser.close()

    def poll(self, now: float) -> None:
        """Start binding the browser when it is due."""
        if (not self.bound and self.job is None and self.stopping is None
                and now >= self.bind_due):
            if not self.binding_again and self.unreachable is None:
                self.feedback.hold(screen.STARTING)
            self._start("bind", None, self.client.bind)

    def send(self, token: str) -> None:
        log.info("badge read")
        self.feedback.answer = None
        self.feedback.hold(screen.CHECKING)
        self._start("badge", token, lambda: self.client.send_badge(token))

    def check_browser(self, token: str) -> None:
        """The badge that just signed in is held up again: ask the portal whether the device's
        browser lost its binding (then that sign-in never reached the child)."""
        if not self.scanner.busy and self.job is None and self.bound:
            self._start("check", token, self.client.browser_needs_binding)

    def _start(self, kind: str, token: str | None, call) -> None:
        self.scanner.busy = True           # no other badge is sent meanwhile
        if self.pool is not None:
            future = self.pool.submit(call)
        else:
            future = Future()
            try:
                future.set_result(call())
            except PortalError as e:
                future.set_exception(e)
        self.job = (kind, token, future)

    def settle(self, now: float) -> bool:
        """Deal with the answer to the request under way, once it is in. True when someone was
        signed in."""
        if self.job is None or not self.job[2].done():
            return False
        kind, token, future = self.job
        self.job = None
        self.feedback.release()
        try:
            outcome = future.result()
        except PortalError as e:
            outcome = e
        signed_in = False
        if kind == "bind":
            self._bound(outcome, now)
        elif kind == "check":
            self._checked(token, outcome, now)
        else:
            signed_in = self._answered(token, outcome, now)
        # No badge is sent while the browser is not bound, nor once the device is refused.
        self.scanner.busy = not self.bound or self.stopping is not None
        return signed_in

    def _bound(self, outcome, now: float) -> None:
        if isinstance(outcome, DeviceRefused):
            self._revoked()
        elif isinstance(outcome, PortalError):
            seconds = self.scanner.wait_offline(now, getattr(outcome, "retry_after", 3.0))
            self.bind_due = now + seconds
            self.unreachable = outcome
            log.warning("could not set up this device's browser: %s; trying again in %.0f s",
                        outcome, seconds)
            self.feedback.hold(screen.OFFLINE)
        else:
            self.scanner.answered()
            _open(outcome.url, "Browser set-up", self.args.no_browser, self.browser)
            if self.binding_again:
                self.scanner.pause(now, REBIND_SECONDS)   # the browser opens the link meanwhile
            else:
                log.info("ready: reading badges")
            self.bound, self.binding_again, self.unreachable = True, False, None

    def _checked(self, token: str, outcome, now: float) -> None:
        if isinstance(outcome, DeviceRefused):
            self._revoked()
        elif outcome is True:
            log.info("the portal saw the sign-in's link opened in a browser that is not set up "
                     "(its cookies may have been cleared): opening a new set-up link; the badge "
                     "still held up is sent again then")
            self.scanner.forget_signed_in()
            self.scanner.forget(token)
            self.bound, self.binding_again, self.bind_due = False, True, now
            self.feedback.say(screen.GETTING_READY, now)
        # False: the child was signed in (a badge waved again). No answer: the same, as far as
        # the kiosk can tell; a badge sent later meets the portal's own check.

    def _answered(self, token: str, outcome, now: float) -> bool:
        """What the kiosk does with the portal's answer to a badge. True when signed in."""
        scanner, feedback = self.scanner, self.feedback
        if isinstance(outcome, PortalUnreachable):
            seconds = scanner.wait_offline(now, outcome.retry_after)  # not a request per frame
            log.warning("%s: waiting %.0f s", outcome, seconds)
            scanner.forget(token)             # still held up once the wait is over: sent then
            feedback.hold(screen.OFFLINE if scanner.offline >= OFFLINE_TELL_AFTER else screen.WAIT,
                          now + seconds)
            return False
        scanner.answered()
        if isinstance(outcome, DeviceRefused):
            self._revoked()
        elif isinstance(outcome, TooManyTries):
            log.info("too many tries: waiting %.0f s", outcome.retry_after)
            scanner.pause(now, outcome.retry_after)
            scanner.forget(token)   # still held up once the wait is over: it is sent then
            feedback.hold(screen.TOO_MANY, now + outcome.retry_after)
        elif isinstance(outcome, BindAgain):
            log.info("%s (its cookies may have been cleared, or its last set-up link opened too "
                     "late): opening a new set-up link; a badge still held up is sent again then",
                     outcome)
            scanner.forget(token)   # sent again, if still held up, once the browser is bound
            self.bound, self.binding_again, self.bind_due = False, True, now
            feedback.say(screen.GETTING_READY, now)
        elif isinstance(outcome, BadgeRefused):
            log.info("badge refused")
            feedback.answered(screen.REFUSED, now)
            if self.browser is not None:
                # The portal signed the last child out: their pages go too.
                try:
                    self.browser.show(f"{self.base}/badges/next")
                except BrowserError as e:
                    log.warning("the kiosk's Chromium could not show the next-child page (%s)", e)
        elif isinstance(outcome, PortalError):
            log.warning("the badge could not be checked: %s", outcome)
            feedback.answered(screen.REFUSED, now)
        else:
            log.info("badge accepted: opening the sign-in")
            scanner.signed_in(token, now)
            _open(outcome.url, "Sign-in", self.args.no_browser, self.browser)
            feedback.answered(screen.SIGNED_IN, now)
            return True
        return False

    def _revoked(self) -> None:
        """The portal no longer knows this device: stop with EXIT_REENROLL."""
        self.feedback.hold(screen.NOT_ENROLLED)
        self.scanner.busy = True       # nothing is sent any more
        self.stopping = Failure(f"the portal no longer knows this device (a school admin may have "
                                f"stopped it): {_enroll_advice(self.base, 'to use it again, enroll it')}",
                                EXIT_REENROLL)

    def finish(self, now: float) -> bool:
        """The input ended: wait for the request under way (within the client's DEADLINE)."""
        if self.job is not None:
            wait([self.job[2]], timeout=self.client.deadline + 5)
        return self.settle(now)


# A printed badge's modules are under a millimetre: at 640x480 a child must hold it within about
# 25 cm of a Chromebook's camera, at 1280x720 about 40 (the decoder reads a 720p frame within its
# 15 ms budget: bench/decode.py).
CAMERA_SIZE = (1280, 720)


def _frame_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    if not (text.isascii() and width.isdigit() and height.isdigit() and 160 <= int(width) <= 4096 and 120 <= int(height) <= 4096):
        raise argparse.ArgumentTypeError("give the size as WIDTHxHEIGHT, for example 1280x720")
    return int(width), int(height)


# Shown while the camera gives no frame, and under "set up again" when it never gave one.
_BLANK = np.zeros((480, 640, 3), np.uint8)


def _say_not_enrolled(window: screen.Preview, failure: Failure, picture: np.ndarray) -> None:
    """Say in the window, over `picture` (a blank), that this device must be set up again, for
    REVOKED_SHOW_SECONDS or until the window is closed: a teacher must see it. The camera is off
    by then (closed, or never opened), so nothing is read, decoded or sent meanwhile: the window
    only answers (repaints, can be closed), and the message is drawn again now and then."""
    log.warning("%s (the window says the device must be set up again, for %.0f s or until it is "
                "closed; the camera is off meanwhile)", failure, REVOKED_SHOW_SECONDS)
    until = time.monotonic() + REVOKED_SHOW_SECONDS
    while (left := until - time.monotonic()) > 0:
        if not (window.show(picture, screen.NOT_ENROLLED)
                and window.wait(min(left, SHOWN_AGAIN_SECONDS))):
            log.info("preview window closed: stopping")
            return


def _scan(client: PortalClient, source, args, base: str, window: screen.Preview | None) -> int:
    """Read badges from `source` and send them with `client`. When the portal no longer knows
    this device, close the camera, say so in the window (if any) for a while, then stop."""
    feedback = Feedback(window)
    scanner = Scanner()
    kiosk = Kiosk(client, scanner, feedback, args, base, live=args.video is None)
    signed_in = 0
    blank = _BLANK
    log.info("reading badges from %s (%s)", "video" if args.video is not None else f"camera {source}",
             "preview window" if window else "no screen")
    try:
        size = args.size if args.video is None else (None, None)
        with closing(frames(source, width=size[0], height=size[1])) as stream:
            for frame in stream:
                now = time.monotonic()
                kiosk.poll(now)
                signed_in += kiosk.settle(now)
                if kiosk.stopping is not None:
                    break          # which closes the camera: nothing more is read or decoded
                feedback.camera_working(frame is not None)
                if frame is None:             # the camera is being opened again
                    frame, read = blank, NO_BADGE
                else:
                    if blank.shape != frame.shape:
                        blank = np.zeros_like(frame)
                    read = read_badge(frame)
                step = scanner.decide(read, now)
                if step.action is Action.SEND:
                    kiosk.send(step.token)
                    signed_in += kiosk.settle(now)    # in line (a video): the answer is in
                    if kiosk.stopping is not None:
                        break
                elif step.action is Action.AGAIN:
                    kiosk.check_browser(step.token)
                    kiosk.settle(now)
                if args.once and signed_in:
                    return 0
                if not feedback.show(frame, read, now, repeat=step.action in (Action.REPEAT, Action.AGAIN)):
                    log.info("preview window closed: stopping")
                    return 0
            else:
                signed_in += kiosk.finish(time.monotonic())
                if kiosk.stopping is not None:
                    raise kiosk.stopping      # the video ended: nothing left to show it over
        if kiosk.stopping is not None:
            if window is not None:
                _say_not_enrolled(window, kiosk.stopping, blank)
            raise kiosk.stopping
    except CameraError as e:
        raise Failure(str(e)) from None
    finally:
        kiosk.close()
        if window is not None:
            window.close()
    if args.once and not signed_in:
        why = f" ({kiosk.unreachable})" if kiosk.unreachable is not None else ""
        raise Failure(f"the video ended before any badge signed in{why}")
    return 0


# --- arguments ------------------------------------------------------------------------------

def _parsers():
    enroll_p = argparse.ArgumentParser(prog="python -m kiosk enroll",
                                       description="Enroll this device with a pairing code.")
    enroll_p.add_argument("--portal", required=True, help="the portal's https:// address")
    enroll_p.add_argument("--code", required=True, help="from `portal kiosk pair SCHOOL_ID`")
    enroll_p.add_argument("--config-dir", help="where the credential is kept (default: "
                          "$KIOSK_CONFIG_DIR or $XDG_CONFIG_HOME/student-portal-kiosk)")

    run_p = argparse.ArgumentParser(prog="python -m kiosk",
                                    description="Sign students in with their QR badges.",
                                    epilog="First enroll the device: python -m kiosk enroll "
                                           "--portal URL --code CODE")
    run_p.add_argument("--portal", required=True, help="the portal's https:// address")
    source = run_p.add_mutually_exclusive_group()
    source.add_argument("--camera", type=int, default=0, help="camera index (default 0)")
    source.add_argument("--video", help="read frames from a video file instead (testing)")
    run_p.add_argument("--size", type=_frame_size, default=CAMERA_SIZE, metavar="WIDTHxHEIGHT",
                       help="the camera's frame size to ask for (default 1280x720; a camera "
                            "without it gives the nearest it has)")
    opener = run_p.add_mutually_exclusive_group()
    opener.add_argument("--no-browser", action="store_true",
                        help="print the sign-in links instead of opening them")
    opener.add_argument("--chromium", metavar="PATH",
                        help="start this Chromium (e.g. /usr/bin/chromium) in one window with a "
                             "profile of its own, and open each sign-in there, closing every "
                             "other tab (the last child's pages and apps)")
    run_p.add_argument("--chromium-flag", action="append", metavar="FLAG",
                       help="add FLAG to that Chromium's command line (repeat as needed; write "
                            "it as --chromium-flag=--kiosk)")
    run_p.add_argument("--once", action="store_true",
                       help="stop after the first sign-in (or when the video ends)")
    run_p.add_argument("--config-dir", help="where the credential is kept")
    return enroll_p, run_p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    logging.basicConfig(level=logging.INFO, format="kiosk: %(message)s", stream=sys.stderr)
    enroll_p, run_p = _parsers()
    enrolling = bool(argv) and argv[0] == "enroll"
    args = enroll_p.parse_args(argv[1:]) if enrolling else run_p.parse_args(argv)
    try:
        return enroll(args) if enrolling else run(args)
    except Failure as e:
        print(f"kiosk: {e}", file=sys.stderr, flush=True)
        return e.status
    except KeyboardInterrupt:
        print("kiosk: stopped", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
