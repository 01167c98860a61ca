"""The kiosk's own Chromium (`python -m kiosk --chromium PATH`): one window that shows only the
page the kiosk last opened.

Opened with the desktop's default browser (webbrowser.open), each hand-off is a new tab, and
over a school day hundreds pile up, with every app a child opened. Here the kiosk starts
Chromium itself, with a profile of its own, and drives it through the DevTools protocol over
a pipe (--remote-debugging-pipe: file descriptors 3 and 4, so no port that any local process
could use to drive it): each link opens in a new page, and every other page (the last child's
tiles, the apps they opened, their history with them) is closed. If Chromium stopped (closed,
crashed), it is started again at the next link, and the log says so. Links are never logged:
a hand-off link is a one-time secret.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import select
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)

ANSWER_SECONDS = 20.0    # for Chromium to answer one command (it starts in about a second)
CLOSE_SECONDS = 5.0      # for the pages it closes to be gone
FLAGS = ("--remote-debugging-pipe", "--no-first-run", "--no-default-browser-check",
         "--disable-session-crashed-bubble", "--app=about:blank")


class BrowserError(Exception):
    """Chromium could not be started, or did not answer."""


class Chromium:
    """A Chromium process this kiosk started and drives. `folder` holds its profile (cookies:
    the browser's binding to this device); `flags` are added to its command line."""

    def __init__(self, path: str, folder: Path, flags: tuple[str, ...] = ()):
        self.path, self.folder, self.flags = path, Path(folder), tuple(flags)
        self.pid: int | None = None
        self._to = self._from = -1
        self._buffer = b""
        self._id = 0

    # --- the kiosk's side -------------------------------------------------------------------

    def show(self, url: str) -> None:
        """Open `url` in a new page and close every other page; start Chromium first if it is
        not running (again, if it stopped)."""
        for attempt in (1, 2):
            if self.pid is not None and not self.running():
                log.warning("the kiosk's Chromium stopped (closed, or it crashed): starting it again")
                self._forget()
            if self.pid is None:
                self._start()
            try:
                page = self.call("Target.createTarget", url=url)["targetId"]
                self._close_all_but(page)
                return
            except BrowserError as e:
                if attempt == 2:
                    raise
                until = time.monotonic() + 1.0     # a browser that stopped is gone by then
                while self.running() and time.monotonic() < until:
                    time.sleep(0.05)
                if self.running():
                    log.warning("the kiosk's Chromium did not answer (%s): starting it again", e)
                    self.close()

    def _close_all_but(self, page: str) -> None:
        """Close every page but `page`, and wait (a while) until they are gone: Chromium answers
        a close before the page has gone."""
        until = time.monotonic() + CLOSE_SECONDS
        closing: set[str] = set()
        while others := [p["targetId"] for p in self.pages() if p["targetId"] != page]:
            for other in others:
                if other not in closing:
                    self.call("Target.closeTarget", targetId=other)
                    closing.add(other)
            if time.monotonic() >= until:
                log.warning("the kiosk's Chromium still shows %d other page(s) after %.0f s",
                            len(others), CLOSE_SECONDS)
                return
            time.sleep(0.05)

    def pages(self) -> list[dict]:
        """The open pages (tabs and windows showing a page), as Chromium describes them."""
        targets = self.call("Target.getTargets")["targetInfos"]
        return [target for target in targets if target.get("type") == "page"]

    def running(self) -> bool:
        if self.pid is None:
            return False
        try:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return False
        return done == 0

    def close(self) -> None:
        """Close Chromium (politely, then not), and forget it."""
        if self.pid is None:
            return
        if self.running():
            try:
                self.call("Browser.close", seconds=5.0)
            except BrowserError:
                pass
            until = time.monotonic() + 5
            while self.running() and time.monotonic() < until:
                time.sleep(0.05)
            if self.running():
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    os.waitpid(self.pid, 0)
                except ChildProcessError:
                    pass
        self._forget()

    # --- the protocol -----------------------------------------------------------------------

    def _start(self) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        to_read, to_write = os.pipe()
        from_read, from_write = os.pipe()
        # Chromium reads commands on its fd 3 and answers on its fd 4. The ends are moved above
        # 9 first, so that putting them at 3 and 4 cannot overwrite one with the other; they are
        # close-on-exec, so only the copies at 3 and 4 reach Chromium.
        theirs = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_read, from_write)]
        os.close(to_read)
        os.close(from_write)
        argv = [self.path, f"--user-data-dir={self.folder}", *FLAGS, *self.flags]
        try:
            # Its output goes nowhere: Chromium may write the addresses it opens there.
            self.pid = os.posix_spawn(self.path, argv, os.environ, setsid=True, file_actions=[
                (os.POSIX_SPAWN_DUP2, theirs[0], 3), (os.POSIX_SPAWN_DUP2, theirs[1], 4),
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)])
        except OSError as e:
            os.close(to_write)
            os.close(from_read)
            raise BrowserError(f"could not start {self.path}: {e.strerror}") from None
        finally:
            for fd in theirs:
                os.close(fd)
        self._to, self._from, self._buffer = to_write, from_read, b""
        log.info("started Chromium (%s) for this kiosk's sign-ins, profile in %s", self.path,
                 self.folder)

    def call(self, method: str, seconds: float = ANSWER_SECONDS, **params) -> dict:
        """Send one command and wait for its answer (events meanwhile are skipped)."""
        if self.pid is None:
            raise BrowserError("Chromium is not running")
        self._id += 1
        message = json.dumps({"id": self._id, "method": method, "params": params}).encode() + b"\0"
        until = time.monotonic() + seconds
        try:
            os.write(self._to, message)
            while True:
                while b"\0" not in self._buffer:
                    left = until - time.monotonic()
                    if left <= 0 or not select.select([self._from], [], [], left)[0]:
                        raise BrowserError(f"no answer to {method} within {seconds:.0f} s")
                    chunk = os.read(self._from, 1 << 16)
                    if not chunk:
                        raise BrowserError("Chromium closed its end")
                    self._buffer += chunk
                raw, _, self._buffer = self._buffer.partition(b"\0")
                answer = json.loads(raw)
                if answer.get("id") == self._id:
                    break
        except (OSError, ValueError) as e:
            raise BrowserError(f"Chromium could not be driven: {e}") from None
        if "error" in answer:
            raise BrowserError(f"{method} failed: {answer['error'].get('message', '?')}")
        return answer.get("result", {})

    def _forget(self) -> None:
        for fd in (self._to, self._from):
            if fd >= 0:
                os.close(fd)
        if self.pid is not None:
            try:
                os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                pass
        self.pid, self._to, self._from, self._buffer = None, -1, -1, b""
