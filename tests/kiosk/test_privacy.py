"""The kiosk's privacy promise, checked on the real program (`python -m kiosk`, a subprocess, a
video of a badge) against a stand-in portal on 127.0.0.1 that records every request whole:

- the only requests are enroll {"code"}, bind {} and badge {"token"}: no frame, no fingerprint,
  no extra key, no extra header, nothing large;
- the only file it creates is its credential (0600, in a 0700 folder), and a scan creates none;
- the token is never printed or logged (the hand-off link is, with --no-browser: it holds a
  one-time code, not the token);
- under strace: no file opened for writing, one connection, to the portal, and a few hundred bytes.
"""
from __future__ import annotations

import getpass
import json
import re
import shutil
import socket
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from bench.badgecard import seeded_token
from tests.kiosk.helpers import RecordingPortal, Sandbox, write_video

pytestmark = pytest.mark.no_database

HEADERS = {"host", "user-agent", "accept", "accept-encoding", "content-type", "content-length",
           "authorization", "connection"}
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"BM", b"RIFF", b"GIF8", b"\x00\x00\x00", b"P5\n", b"P6\n")
CREDENTIAL = "home/.config/student-portal-kiosk/device.json"


@pytest.fixture
def token():
    return seeded_token(np.random.default_rng(404))


@pytest.fixture
def sandbox(tmp_path):
    return Sandbox(tmp_path / "sandbox")


@pytest.fixture
def video(tmp_path, token):
    return write_video(tmp_path / "badge.avi", [token])


def fingerprints() -> list[bytes]:
    """What would identify this machine or its user if a request carried it."""
    found = [socket.gethostname(), getpass.getuser(), f"{uuid.getnode():012x}"]
    return [f.encode() for f in found if f and len(f) >= 4]


def test_kiosk_sends_only_the_token_and_writes_only_its_credential(sandbox, video, token):
    with RecordingPortal() as portal:
        before_enroll = sandbox.files()
        enrolled = sandbox.run("enroll", "--portal", portal.url, "--code", portal.code)
        assert enrolled.returncode == 0, enrolled.stderr
        after_enroll = sandbox.files()
        video_before = video.stat()

        scanned = sandbox.run("--portal", portal.url, "--video", str(video), "--no-browser", "--once")
        assert scanned.returncode == 0, scanned.stderr
        after_scan = sandbox.files()

    # Enrolling created the credential and its folder, nothing else; the scan created nothing
    # and changed nothing (cwd, HOME, XDG_CONFIG_HOME, XDG_CACHE_HOME and TMPDIR included).
    created = set(after_enroll) - set(before_enroll)
    assert created == {CREDENTIAL, str(Path(CREDENTIAL).parent)}
    assert after_scan == after_enroll
    assert not any(sandbox.cwd.iterdir())
    assert (video.stat().st_size, video.stat().st_mtime_ns) == (video_before.st_size, video_before.st_mtime_ns)
    assert stat.S_IMODE(after_enroll[CREDENTIAL][0]) == 0o600
    assert stat.S_IMODE(after_enroll[str(Path(CREDENTIAL).parent)][0]) == 0o700
    stored = (sandbox.root / CREDENTIAL).read_text()
    assert json.loads(stored)["credential"] == portal.credential and token not in stored

    # Exactly three requests, each with exactly its documented body.
    assert [(r.method, r.path) for r in portal.requests] == [
        ("POST", "/kiosk/enroll"), ("POST", "/kiosk/bind"), ("POST", "/kiosk/badge")]
    enroll, bind, badge = portal.requests
    assert enroll.json() == {"code": portal.code} and "authorization" not in enroll.headers
    assert bind.json() == {}
    assert badge.json() == {"token": token, "seq": 1}      # the token, and the scan's number
    for request in (bind, badge):
        assert request.headers["authorization"] == f"Bearer {portal.credential}"
    for request in portal.requests:
        assert set(request.headers) <= HEADERS, request.headers
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"] == "student-portal-kiosk"   # no versions, no OS
        raw = request.body + json.dumps(request.headers).encode()
        assert len(raw) < 600 and len(request.body) <= 60
        assert not any(magic in request.body for magic in IMAGE_MAGIC)
        assert not any(mark in raw for mark in fingerprints())
        assert request.body.isascii()

    # The token is in no output and no log line; the one-time links are, as --no-browser asks.
    output = scanned.stdout + scanned.stderr + enrolled.stdout + enrolled.stderr
    assert token not in output and token[5:25] not in output
    assert portal.credential not in output
    assert re.search(rf"{re.escape(portal.url)}/kiosk/handoff/[\w-]+", scanned.stdout)
    assert "badge read" in scanned.stderr


def test_a_refused_badge_is_sent_once_and_told_plainly(sandbox, video, token):
    with RecordingPortal(badge_status=403) as portal:
        assert sandbox.run("enroll", "--portal", portal.url, "--code", portal.code).returncode == 0
        scanned = sandbox.run("--portal", portal.url, "--video", str(video), "--no-browser", "--once")
    # Two seconds of the same badge: one request, not sixty.
    assert [r.json() for r in portal.to("/kiosk/badge")] == [{"token": token, "seq": 1}]
    assert "That badge didn't work. Ask your teacher." in scanned.stdout
    assert scanned.returncode == 1 and token not in scanned.stdout + scanned.stderr


# --- the same run, watched by strace ---------------------------------------------------------

_WRITE_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND")
_CHANGES = re.compile(r"^(creat|rename\w*|link\w*|symlink\w*|unlink\w*|mkdir\w*|rmdir|truncate\w*|"
                      r"mknod\w*|chmod|fchmodat)$")
_CALL = re.compile(r"^(\d+) +(\w+)\((.*)\) += (-?\d+|\?)")


def _syscalls(trace: Path):
    for line in trace.read_text(errors="replace").splitlines():
        match = _CALL.match(line)
        if match:
            pid, name, args, result = match.groups()
            yield int(pid), name, args, int(result) if result != "?" else None


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_under_strace_no_file_is_written_and_only_the_portal_is_contacted(sandbox, video, token,
                                                                          tmp_path):
    trace = tmp_path / "trace"
    with RecordingPortal() as portal:
        assert sandbox.run("enroll", "--portal", portal.url, "--code", portal.code).returncode == 0
        port = portal.server.server_port
        run = subprocess.run(
            ["strace", "-f", "-qq", "-e", "signal=none", "-e", "trace=%file,%desc,%network",
             "-o", str(trace), sys.executable, "-m", "kiosk", "--portal", portal.url,
             "--video", str(video), "--no-browser", "--once"],
            cwd=sandbox.cwd, env=sandbox.env(), capture_output=True, text=True, timeout=120)
    if "PTRACE" in run.stderr or "Operation not permitted" in run.stderr:
        pytest.skip("this machine does not allow ptrace")
    assert run.returncode == 0, run.stderr

    sockets: set[tuple[int, int]] = set()
    written, connects, sent = [], [], 0
    for pid, name, args, result in _syscalls(trace):
        if name in ("open", "openat", "openat2") and _WRITE_FLAGS.search(args):
            written.append(args)
        elif _CHANGES.match(name):
            written.append(f"{name}({args})")
        elif name == "socket" and result is not None and result >= 0:
            sockets.add((pid, result))
        elif name == "connect":
            connects.append(args)
        elif name in ("sendto", "sendmsg", "write", "writev") and result and result > 0:
            fd = int(args.split(",", 1)[0])
            if name.startswith("send") or (pid, fd) in sockets:
                sent += result
        elif name == "close":
            sockets.discard((pid, int(args.split(",", 1)[0])))
    # /dev/null is opened by the standard library; no other file is opened for writing.
    assert all('"/dev/null"' in call for call in written), written
    assert len(connects) == 1, connects
    assert f"htons({port})" in connects[0] and 'inet_addr("127.0.0.1")' in connects[0]
    # The bind and badge requests, headers and all, are all that left the process.
    assert 0 < sent < 1200, sent
    assert token not in run.stdout + run.stderr
