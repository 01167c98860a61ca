"""`python -m kiosk`: enroll this device once, then run the badge kiosk.

    python -m kiosk enroll --portal URL --code CODE [--config-dir DIR]
    python -m kiosk --portal URL [--camera N | --video FILE] [--no-browser] [--once] [--config-dir DIR]

At start-up the kiosk binds the device's browser (opens the portal's bind link). Then each
camera frame is decoded in memory; one badge's token is sent to the portal, and the hand-off
link it answers with opens in the browser, which signs the student in. When the portal answers
that the browser is not (or no longer) bound, the kiosk opens a new bind link and sends the
badge again once the browser had a moment to open it. --no-browser prints the
links instead. --once stops after the first sign-in (or when the --video ends).

Exit status: 0 done, 1 a failure (said in one line), 2 bad arguments, 3 the portal no longer
knows this device (enroll it again). Logs never show a token, a credential or a picture.
"""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
import webbrowser
from contextlib import closing

from kiosk import credentials, preview as screen
from kiosk.camera import CameraError, frames
from kiosk.client import (
    BadgeRefused, BindAgain, DeviceRefused, PairingRefused, PortalClient, PortalError,
    PortalUnreachable, TooManyTries, plain, portal_base, same_portal,
)
from kiosk.credentials import CredentialError, Device
from kiosk.decoder import read_badge
from kiosk.scanner import Action, Scanner

log = logging.getLogger("kiosk")

EXIT_FAILED, EXIT_USAGE, EXIT_REENROLL = 1, 2, 3
MESSAGE_SECONDS = 3.0     # an answer from the portal stays on screen this long
OFFLINE_TELL_AFTER = 3    # sends in a row without an answer before the child is told to ask
# After binding the browser again, the kiosk sends nothing for this long: the browser opens the
# bind link meanwhile, and a badge still held up is sent again after it.
REBIND_SECONDS = 3.0


class Failure(Exception):
    """Stop with this one-line reason."""

    def __init__(self, message: str, status: int = EXIT_FAILED):
        super().__init__(message)
        self.status = status


def _enroll_hint(portal: str) -> str:
    return f"python -m kiosk enroll --portal {portal} --code CODE"


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
    """The line for the child: the portal's last answer for a few seconds, else a steady line
    while the kiosk waits (hold), else live advice. Without a window, each new line is printed
    once."""

    def __init__(self, window: screen.Preview | None):
        self.window = window
        self.event: str | None = None
        self.event_until = 0.0
        self.held: str | None = None
        self.held_until = 0.0
        self.printed: str | None = None

    def say(self, message: str, now: float) -> None:
        self.event, self.event_until = message, now + MESSAGE_SECONDS
        self._print(message)

    def hold(self, message: str, until: float) -> None:
        """Show `message` until `until` (the kiosk is waiting), rather than the usual advice."""
        self.event_until = 0.0
        self.held, self.held_until = message, until
        self._print(message)

    def _print(self, message: str) -> None:
        if message != self.printed:
            print(message, flush=True)
            self.printed = message

    def show(self, frame, read, now: float) -> bool:
        """Update the window (if any) for this frame; False when it was closed."""
        if read.several:
            self.say(screen.ONE_AT_A_TIME, now)
        if self.window is None:
            return True
        if self.event is not None and now < self.event_until:
            message = self.event
        elif self.held is not None and now < self.held_until:
            message = self.held
        else:
            message = screen.frame_advice(frame, read)
        return self.window.show(frame, message)


def _base(portal: str) -> str:
    try:
        return portal_base(portal)
    except ValueError as e:
        raise Failure(str(e), EXIT_USAGE) from None


def _open(url: str, what: str, no_browser: bool) -> None:
    """Open a one-time portal link in this device's browser, or print it."""
    if not no_browser:
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
        raise Failure(str(e)) from None
    if device is None:
        raise Failure(f"this device is not enrolled: {_enroll_hint(base)}")
    if not same_portal(device.portal, base):
        raise Failure(f"this device is enrolled with {device.portal}, not {base}: "
                      f"{_enroll_hint(base)}")
    return device


def run(args) -> int:
    """Bind the browser, then read badges until stopped (or, with --once, the first sign-in)."""
    base = _base(args.portal)
    device = _device(args, base)
    client = PortalClient(device.portal, device.credential)
    try:
        try:
            bind = client.bind()
        except DeviceRefused:
            raise Failure(f"the portal no longer knows this device: {_enroll_hint(base)}",
                          EXIT_REENROLL) from None
        except PortalError as e:
            raise Failure(f"could not start: {e}") from None
        _open(bind.url, "Browser set-up", args.no_browser)
        log.info("device %s (%s, %s) ready", device.device_id, plain(device.name),
                 plain(device.school))
        source = args.video if args.video is not None else args.camera
        return _scan(client, source, args, base)
    finally:
        client.close()


def _scan(client: PortalClient, source, args, base: str) -> int:
    window = screen.Preview.open()
    feedback = Feedback(window)
    scanner = Scanner()
    signed_in = 0
    log.info("reading badges from %s (%s)", "video" if args.video is not None else f"camera {source}",
             "preview window" if window else "no screen")
    try:
        with closing(frames(source)) as stream:
            for frame in stream:
                now = time.monotonic()
                read = read_badge(frame)
                step = scanner.decide(read, now)
                if step.action is Action.SEND:
                    if _send(client, scanner, feedback, step.token, now, args, base):
                        signed_in += 1
                        if args.once:
                            return 0
                if not feedback.show(frame, read, now):
                    log.info("preview window closed: stopping")
                    return 0
    except CameraError as e:
        raise Failure(str(e)) from None
    finally:
        if window is not None:
            window.close()
    if args.once and not signed_in:
        raise Failure("the video ended before any badge signed in")
    return 0


def _send(client, scanner: Scanner, feedback: Feedback, token: str, now: float, args,
          base: str) -> bool:
    """Send one token; open the hand-off on success. True when someone signed in."""
    log.info("badge read")
    try:
        handoff = client.send_badge(token)
    except PortalUnreachable as e:
        seconds = scanner.wait_offline(now, e.retry_after)   # not one request per frame meanwhile
        log.warning("%s: waiting %.0f s", e, seconds)
        scanner.forget(token)               # still held up once the wait is over: sent then
        feedback.hold(screen.OFFLINE if scanner.offline >= OFFLINE_TELL_AFTER else screen.WAIT,
                      now + seconds)
        return False
    except PortalError as e:
        scanner.answered()
        _not_signed_in(e, client, scanner, feedback, token, now, args, base)
        return False
    scanner.answered()
    log.info("badge accepted: opening the sign-in")
    _open(handoff.url, "Sign-in", args.no_browser)
    feedback.say(screen.SIGNED_IN, now)
    return True


def _not_signed_in(answer: PortalError, client, scanner: Scanner, feedback: Feedback, token: str,
                   now: float, args, base: str) -> None:
    """What the kiosk does when the portal answered a badge with anything but a hand-off."""
    if isinstance(answer, DeviceRefused):
        raise _revoked(feedback, now, base) from None
    if isinstance(answer, TooManyTries):
        log.info("too many tries: waiting %.0f s", answer.retry_after)
        scanner.pause(now, answer.retry_after)
        scanner.forget(token)     # still held up once the wait is over: it is sent then
        feedback.hold(screen.TOO_MANY, now + answer.retry_after)
    elif isinstance(answer, BindAgain):
        log.info("binding the browser again (the portal said: %s)", answer)
        scanner.forget(token)        # sent again, if still held up, once the browser is bound
        scanner.pause(now, REBIND_SECONDS)
        feedback.say(screen.GETTING_READY, now)
        try:
            bind = client.bind()
        except DeviceRefused:
            raise _revoked(feedback, now, base) from None
        except PortalError as e:
            log.warning("could not bind the browser again: %s", e)
        else:
            _open(bind.url, "Browser set-up", args.no_browser)
    elif isinstance(answer, BadgeRefused):
        log.info("badge refused")
        feedback.say(screen.REFUSED, now)
    else:
        log.warning("the portal refused the request: %s", answer)
        feedback.say(screen.REFUSED, now)


def _revoked(feedback: Feedback, now: float, base: str) -> Failure:
    feedback.say(screen.NOT_ENROLLED, now)
    return Failure(f"the portal no longer knows this device: {_enroll_hint(base)}", EXIT_REENROLL)


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
    run_p.add_argument("--no-browser", action="store_true",
                       help="print the sign-in links instead of opening them")
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
