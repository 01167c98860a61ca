"""Kiosk test helpers: a video of a held badge card, a recording stand-in for the portal, and
the real kiosk program run as a subprocess in a sealed-off home."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from bench.badgecard import card_image
from kiosk.__main__ import Feedback, Kiosk
from kiosk.scanner import Scanner
from bench.badgeframes import background, jpeg, person
from tests.serving import start_serving, stop_serving

ROOT = Path(__file__).resolve().parents[2]
SIZE = (640, 480)


def badge_frames(tokens: list[str], count: int = 60, seed: int = 5):
    """`count` frames (30 a second) of a classroom with a card held up for each token, side by
    side, drifting a little, with sensor noise and MJPEG, as bench/badgeframes.py draws them."""
    rng = np.random.default_rng(seed)
    w, h = SIZE
    wall = background(w, h, rng)
    person(wall, w / 2, rng)
    cards = []
    for token in tokens:
        card = card_image(token, rng)
        scale = (0.8 if len(tokens) == 1 else 0.55) * h / card.shape[0]
        cards.append(cv2.resize(card, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    for i in range(count):
        frame = wall.copy()
        for k, card in enumerate(cards):
            ch, cw = card.shape[:2]
            cx = w * (k + 1) / (len(cards) + 1) + 6 * np.sin(i / 7 + k)
            cy = h / 2 + 4 * np.cos(i / 9 + k)
            x0, y0 = int(cx - cw / 2), int(cy - ch / 2)
            frame[y0:y0 + ch, x0:x0 + cw] = card
        noisy = frame.astype(np.float32) + rng.normal(0, 2.5, frame.shape).astype(np.float32)
        yield jpeg(cv2.GaussianBlur(noisy.clip(0, 255).astype(np.uint8), (0, 0), 0.7), 85)


def write_video(path: Path, tokens: list[str], count: int = 60, seed: int = 5) -> Path:
    """A short MJPEG .avi of badge_frames (a couple of seconds)."""
    return write_clips(path, [tokens], count, seed)


def write_clips(path: Path, clips: list[list[str]], count: int = 45, seed: int = 5) -> Path:
    """One .avi of several clips in a row, each `count` frames of its badges held up."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, SIZE)
    assert writer.isOpened()
    for k, tokens in enumerate(clips):
        for frame in badge_frames(tokens, count, seed + k):
            writer.write(frame)
    writer.release()
    return path


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class RecordingPortal:
    """A stand-in for the portal on 127.0.0.1: records every request whole and answers the
    documented kiosk API (any pairing code enrolls; any badge is accepted, or refused)."""
    code: str = "KQ7M4PXD"
    credential: str = field(default_factory=lambda: "kd1_" + secrets.token_urlsafe(32))
    badge_status: int = 200
    badge_replies: list[int] = field(default_factory=list)   # statuses answered first, in order
    retry_after: str = "1"                                   # with a 429 or a 503
    badge_delay: float = 0.0                                 # seconds before each badge answer
    answers: dict[str, list[tuple[int, dict]]] = field(default_factory=dict)  # path -> (status,
                                                             # body) answered first, in order
    port: int = 0                                            # 0: any free port
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self):
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _record(self) -> Recorded:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, 10_000_000))
                seen = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                body)
                recorder.requests.append(seen)
                return seen

            def _answer(self, status: int, data: dict) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                if status in (429, 503):
                    self.send_header("Retry-After", recorder.retry_after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                self._record()
                self._answer(404, {"error": "Not found"})

            def do_POST(self):
                self._record()
                base = recorder.url
                if self.path == "/kiosk/badge" and recorder.badge_delay:
                    import time
                    time.sleep(recorder.badge_delay)
                if self.path == "/kiosk/enroll":
                    self._answer(201, {"device_id": 7, "name": "Room 4 kiosk", "school": "Maple Elementary",
                                       "credential": recorder.credential})
                elif self.headers.get("Authorization") != f"Bearer {recorder.credential}":
                    self._answer(401, {"error": "This device is not enrolled", "advice": "Enroll it."})
                elif recorder.answers.get(self.path):
                    self._answer(*recorder.answers[self.path].pop(0))
                elif self.path == "/kiosk/bind":
                    self._answer(200, {"bind_url": f"{base}/kiosk/bind/{secrets.token_urlsafe(32)}",
                                       "expires_in": 30})
                elif self.path == "/kiosk/badge" and recorder.badge_replies:
                    status = recorder.badge_replies.pop(0)
                    self._answer(status, {"error": "Too many tries" if status == 429 else
                                          "Sign-in is unavailable", "advice": "Try again in a few seconds."})
                elif self.path == "/kiosk/badge" and recorder.badge_status == 200:
                    self._answer(200, {"handoff_url": f"{base}/kiosk/handoff/{secrets.token_urlsafe(32)}",
                                       "expires_in": 30})
                elif self.path == "/kiosk/badge":
                    self._answer(recorder.badge_status, {"error": "That badge didn't work",
                                                         "advice": "Ask your teacher for help."})
                else:
                    self._answer(404, {"error": "Not found"})

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> "RecordingPortal":
        self.thread = start_serving(self.server, "recording-portal")
        return self

    def __exit__(self, *exc) -> None:
        stop_serving(self.server, self.thread)

    def to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]


@dataclass
class Sandbox:
    """A fresh home for one kiosk run: HOME, XDG_CONFIG_HOME, XDG_CACHE_HOME, TMPDIR and the
    working directory, all under one temporary folder."""
    root: Path

    def __post_init__(self):
        for name in ("home", "home/.config", "home/.cache", "tmp", "cwd"):
            (self.root / name).mkdir(parents=True, exist_ok=True)

    @property
    def cwd(self) -> Path:
        return self.root / "cwd"

    @property
    def config(self) -> Path:
        return self.root / "home/.config/student-portal-kiosk"

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items()
                if k in ("PATH", "LANG", "LC_ALL", "SYSTEMROOT") or k.startswith("PYTHON")}
        keep.pop("PYTHONDONTWRITEBYTECODE", None)
        return {**keep, "HOME": str(self.root / "home"), "XDG_CONFIG_HOME": str(self.root / "home/.config"),
                "XDG_CACHE_HOME": str(self.root / "home/.cache"), "TMPDIR": str(self.root / "tmp"),
                "PYTHONPATH": str(ROOT)}

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """The real kiosk program (`python -m kiosk ARGS`), headless, in this sandbox."""
        return subprocess.run([sys.executable, "-m", "kiosk", *args], cwd=self.cwd, env=self.env(),
                              capture_output=True, text=True, timeout=timeout)

    def files(self) -> dict[str, tuple[int, int, int]]:
        """Every file and folder under the sandbox: relative path -> (mode, size, mtime_ns)."""
        found = {}
        for path in sorted(self.root.rglob("*")):
            st = path.lstat()
            found[str(path.relative_to(self.root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
        return found


# --- the real kiosk program in this process, against the live portal -------------------------

class LiveCamera:
    """A camera that shows, in real time (30 frames a second), each scene of a timeline in
    turn: [(seconds, tokens held up, or None for nobody), ...]. `then` runs a callable when its
    scene starts (a cookie cleared, the portal frozen...). Stands in for kiosk.camera.frames."""

    def __init__(self, timeline, fps: int = 30):
        self.timeline = [scene if len(scene) == 3 else (*scene, None) for scene in timeline]
        self.fps = fps
        self._cache: dict[tuple, list] = {}
        for _, tokens, _ in self.timeline:
            self._frames(tokens)

    def _frames(self, tokens):
        key = tuple(tokens or ())
        if key not in self._cache:
            self._cache[key] = (list(badge_frames(list(key), 30, seed=7)) if key
                                else [np.full((SIZE[1], SIZE[0], 3), 200, np.uint8)])
        return self._cache[key]

    def __call__(self, source, **asked):
        import time
        self.asked = asked          # the frame size the program asked the camera for
        start = time.monotonic()
        shown, until = 0, start
        for seconds, tokens, then in self.timeline:
            if then is not None:
                then()
            until += seconds
            frames = self._frames(tokens)
            while time.monotonic() < until:
                yield frames[shown % len(frames)]
                shown += 1
                time.sleep(max(0.0, start + shown / self.fps - time.monotonic()))


class FakeWindow:
    """The preview window: records each new line it is asked to show, when, and when each frame
    was shown."""

    def __init__(self):
        self.lines: list[str] = []
        self.since: list[float] = []        # when each line was first shown
        self.shown: list[float] = []        # when each frame was shown
        self.closed_at: float | None = None

    def show(self, frame, message: str) -> bool:
        import time
        now = time.monotonic()
        self.shown.append(now)
        if not self.lines or self.lines[-1] != message:
            self.lines.append(message)
            self.since.append(now)
        return True

    def wait(self, seconds: float) -> bool:
        import time
        time.sleep(seconds)
        return True

    def when(self, message: str) -> float:
        return self.since[self.lines.index(message)]

    def close(self) -> None:
        import time
        self.closed_at = time.monotonic()


class LinkBrowser:
    """The device's browser: opens each link the kiosk opens, at once, with its own cookies,
    and records (kind, status, page heading)."""

    def __init__(self):
        import requests
        self.session = requests.Session()
        self.opened: list[tuple[str, int, str]] = []
        self.before_open = None      # called with the URL first (to make a bind link late...)

    def open(self, url: str, *args, **kwargs) -> bool:
        import re
        if self.before_open is not None:
            self.before_open(url)
        page = self.session.get(url, timeout=10)
        heading = re.search(r"<h1[^>]*>(.*?)</h1>", page.text, re.S)
        kind = "bind" if "/kiosk/bind/" in url else "handoff"
        self.opened.append((kind, page.status_code, heading.group(1).strip() if heading else ""))
        return True

    def forget_cookies(self) -> None:
        self.session.cookies.clear()


def run_kiosk_here(monkeypatch, argv: list[str], camera: LiveCamera, browser: LinkBrowser,
                   window: FakeWindow | None = None) -> int:
    """kiosk.__main__.main(argv) in this process, with `camera`, `browser` and `window`."""
    import kiosk.__main__ as program
    monkeypatch.setattr(program, "frames", camera)
    monkeypatch.setattr(program.webbrowser, "open", browser.open)
    monkeypatch.setattr(program.screen.Preview, "open", staticmethod(lambda *a, **k: window))
    return program.main(argv)


def save_device(folder: Path, portal: str, device_id: int, credential: str) -> Path:
    """Store an enrolled device's credential as `python -m kiosk enroll` does."""
    from kiosk import credentials
    return credentials.save(folder, credentials.Device(portal=portal, device_id=device_id,
                                                       name="Room 4 kiosk", school="Maple",
                                                       credential=credential))


def bind_a_browser(portal: str, credential: str):
    """A browser bound to the device holding `credential`, as a run of the kiosk program before
    this one left it (a scan from a device with no bound browser is answered "bind again")."""
    import requests
    answer = requests.post(f"{portal}/kiosk/bind", json={}, timeout=10,
                           headers={"Authorization": f"Bearer {credential}"})
    browser = requests.Session()
    assert browser.get(answer.json()["bind_url"], timeout=10).status_code == 200
    return browser


def send_once(client, scanner: Scanner, feedback: Feedback, token: str, now: float, args,
          base: str) -> bool:
    """Send one token through the kiosk program's own Kiosk and deal with the answer, in line,
    as the camera loop does (binding the browser again at once if the portal asks). True when
    someone signed in."""
    kiosk = Kiosk(client, scanner, feedback, args, base, live=False)
    kiosk.bound = True
    kiosk.send(token)
    signed_in = kiosk.settle(now)
    kiosk.poll(now)
    kiosk.settle(now)
    if kiosk.stopping is not None:
        raise kiosk.stopping
    return signed_in
