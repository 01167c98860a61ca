"""Token -> portal. The kiosk's only requests, and all they carry:

    POST /kiosk/enroll  {"code": CODE}                                  -> the device credential
    POST /kiosk/bind    {}                 Authorization: Bearer <cred> -> a bind URL
    POST /kiosk/badge   {"token": TOKEN, "seq": N}                 ... -> a hand-off URL
    POST /kiosk/browser {}                                         ... -> {"bind_again": bool}
                                                                       (409: bind the browser again)

N numbers this run's scans, 1, 2, 3...: a scan the kiosk gave up on (the portal stalled) that
reaches the portal after a newer one then changes nothing there. No frame, no device name or
fingerprint, no extra key; a fixed User-Agent without versions.
Proxies come from the environment, but never ~/.netrc (requests would let it replace the
Authorization header). Redirects are not followed, so the credential goes nowhere else. Links
the portal answers with are rebuilt on the portal's own address before anything opens them.

The portal's answers are not trusted to be well-behaved: each is read within DEADLINE seconds
and MAX_ANSWER bytes (the camera loop waits for it), anything it says is checked before use, and
its words are shown only through plain(), so no escape sequence reaches the terminal. Only its
words for the person at the device are shown (a pairing code refused, too many tries); its advice
to the API's programmers ("Bind it again (POST /kiosk/bind...)", "Use Content-Type: ...") and to
a person at a browser (503's "Try again in a minute") is not: the errors below say in the kiosk's
words what happened, and the kiosk's log what it does about it or what to do.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
import urllib3

USER_AGENT = "student-portal-kiosk"
TIMEOUT = (3.05, 10.0)          # seconds to connect, seconds to wait for the next bytes
# The read timeout only limits the wait between bytes: a portal that sends one byte every few
# seconds would never reach it, and the kiosk (one thread: the camera waits) would freeze. So
# the whole answer must also arrive within DEADLINE seconds of asking, and be no larger than
# MAX_ANSWER bytes (the portal's answers are a few hundred), or the request is given up.
DEADLINE = 15.0
MAX_ANSWER = 64 * 1024
MAX_SHOWN = 200                 # characters of the portal's own words shown, at most
_CHUNK = 8192
# A credential as the portal issues it (portal/badges/kiosks.py): "kd1_" and 32 random bytes,
# URL-safe base64. ASCII only, as it travels in an HTTP header; the portal refuses any longer
# than 100 characters.
CREDENTIAL_SHAPE = re.compile(r"kd1_[A-Za-z0-9_-]{16,96}")
MAX_DEVICE_ID = 2 ** 63 - 1     # the portal's ids are database integers
MAX_RETRY_AFTER = 120.0
# After no answer (or "unavailable" without a Retry-After), the kiosk waits this long before it
# sends again: a camera reads 30 frames a second, and a held badge must not become 30 requests
# a second against a portal that is down or struggling.
OFFLINE_RETRY_SECONDS = 3.0
_LINK = {"bind": re.compile(r"/kiosk/bind/[A-Za-z0-9_-]{16,100}"),
         "handoff": re.compile(r"/kiosk/handoff/[A-Za-z0-9_-]{16,100}")}
_LOOPBACK_NAMES = ("localhost",)


class PortalError(Exception):
    """The portal did not do what was asked; str() is one plain line."""


class PortalUnreachable(PortalError):
    """No answer: network, DNS, TLS, time-out, not the portal, or the portal is unavailable (503).
    Send nothing for `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float = OFFLINE_RETRY_SECONDS):
        super().__init__(message)
        self.retry_after = retry_after


class PairingRefused(PortalError):
    """The pairing code was refused (wrong, used, or older than 10 minutes)."""


class DeviceRefused(PortalError):
    """401: the credential is unknown or the device was revoked. Enroll again."""


class BadgeRefused(PortalError):
    """403: the portal's one answer for every refused badge."""


class BindAgain(PortalError):
    """409: the device's browser is not (or no longer) bound; the badge was not looked at. Bind
    the browser again, then send the badge again."""


class TooManyTries(PortalError):
    """429: wait `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Answer:
    """The portal's answer, read whole: its status, headers and body."""
    status_code: int
    headers: requests.structures.CaseInsensitiveDict
    body: bytes = field(repr=False)

    def json(self):
        return json.loads(self.body)


@dataclass(frozen=True)
class Link:
    """A one-time link on the portal, to open in the device's browser right away."""
    url: str
    expires_in: int


def portal_base(url: str) -> str:
    """The portal's base URL, checked: https, or http on 127.0.0.1/localhost for testing."""
    parts = urlsplit((url or "").strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("the portal address must look like https://portal.example.org")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("the portal address must be just https://host[/path]")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("the portal address must start with https:// "
                         "(http:// only for 127.0.0.1 or localhost, for testing)")
    try:
        parts.port
    except ValueError:
        raise ValueError("the portal address has a bad port number") from None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def same_portal(a: str, b: str) -> bool:
    """True when two portal addresses name the same portal."""
    pa, pb = urlsplit(portal_base(a)), urlsplit(portal_base(b))
    return ((pa.scheme, pa.hostname, pa.port or _default_port(pa.scheme), pa.path)
            == (pb.scheme, pb.hostname, pb.port or _default_port(pb.scheme), pb.path))


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def plain(text, limit: int = MAX_SHOWN) -> str:
    """Words from the portal made safe to print: one line, at most `limit` characters, with no
    control characters. A terminal obeys escape sequences, so a portal's error message or
    school name could otherwise retitle the window, clear the screen or draw a false prompt."""
    kept = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in str(text))
    return " ".join(kept.split())[:limit]


def is_credential(value) -> bool:
    """True for a credential shaped as the portal issues them (CREDENTIAL_SHAPE)."""
    return isinstance(value, str) and CREDENTIAL_SHAPE.fullmatch(value) is not None


def is_device_id(value) -> bool:
    """True for a device id as the portal issues them: a positive whole number (not a bool,
    not a float, and small enough for the portal's database)."""
    return type(value) is int and 0 < value <= MAX_DEVICE_ID


class PortalClient:
    """The device's side of the kiosk API (one keep-alive connection, timeouts on every call)."""

    def __init__(self, portal: str, credential: str | None = None, *, timeout=TIMEOUT,
                 deadline: float = DEADLINE, max_answer: int = MAX_ANSWER):
        self.base = portal_base(portal)
        self._credential = credential
        self.timeout = timeout
        self.deadline = deadline
        self.max_answer = max_answer
        self.http = requests.Session()
        self.http.trust_env = False       # no ~/.netrc; proxies and CA bundle set explicitly
        self.http.proxies = requests.utils.get_environ_proxies(self.base)
        self.http.verify = os.environ.get("REQUESTS_CA_BUNDLE") or True
        self.http.headers.clear()
        self.http.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self._seq = 0        # the last scan's number

    def close(self) -> None:
        self.http.close()

    def __repr__(self) -> str:
        return f"PortalClient({self.base!r})"

    def enroll(self, code: str) -> dict:
        """Trade a pairing code for {device_id, name, school, credential}."""
        response = self._post("/kiosk/enroll", {"code": code}, authorized=False)
        if response.status_code == 201:
            data = _json(response)
            device_id, credential = data.get("device_id"), data.get("credential")
            name, school = data.get("name"), data.get("school")
            # Checked before anything is stored: a credential HTTP cannot carry, or an id that
            # is not one, would be saved and then break every later start of the kiosk.
            if not (is_device_id(device_id) and is_credential(credential)
                    and isinstance(name, str) and isinstance(school, str)):
                raise PortalUnreachable("the portal's answer was not understood")
            return {"device_id": device_id, "name": plain(name), "school": plain(school),
                    "credential": credential}
        if response.status_code == 400:
            raise PairingRefused(_explain(response, "That pairing code didn't work. "
                                          "Codes work once, for 10 minutes. Ask for a new one."))
        raise self._failure(response)

    def bind(self) -> Link:
        """A one-time URL that binds this device's browser (open it within 30 seconds)."""
        response = self._post("/kiosk/bind", {})
        if response.status_code == 200:
            return self._link(response, "bind_url", "bind")
        raise self._failure(response)

    def browser_needs_binding(self) -> bool:
        """Whether the portal saw this device's browser lose its binding (a hand-off opened in a
        browser without the device's cookie)."""
        response = self._post("/kiosk/browser", {})
        if response.status_code == 200:
            answer = _json(response).get("bind_again")
            if isinstance(answer, bool):
                return answer
            raise PortalUnreachable("the portal's answer was not understood (is this the portal?)")
        raise self._failure(response)

    def send_badge(self, token: str) -> Link:
        """Send a scanned token; return the hand-off URL for this device's browser."""
        self._seq += 1
        response = self._post("/kiosk/badge", {"token": token, "seq": self._seq})
        if response.status_code == 200:
            return self._link(response, "handoff_url", "handoff")
        if response.status_code == 403:
            raise BadgeRefused("That badge didn't work.")
        if response.status_code == 409:
            raise BindAgain("the portal asks for this device's browser to be set up again")
        raise self._failure(response)

    def _post(self, path: str, body: dict, *, authorized: bool = True) -> Answer:
        headers = {"Content-Type": "application/json"}
        if authorized:
            if not self._credential:
                raise DeviceRefused("this device is not enrolled")
            headers["Authorization"] = f"Bearer {self._credential}"
        deadline = time.monotonic() + self.deadline
        connect, read = self.timeout if isinstance(self.timeout, tuple) else (self.timeout,) * 2
        try:
            # stream=True: the body is read below, under the deadline and the size cap. Until the
            # headers are in, only the connect and read timeouts (cut to the deadline) apply:
            # requests gives no hold on the socket before that, so a portal that drips its
            # headers is bounded per wait, not in total.
            # Compact JSON: the body is the token and its number, and not a byte more.
            response = self.http.post(self.base + path, headers=headers,
                                      data=json.dumps(body, separators=(",", ":")).encode(),
                                      timeout=(min(connect, self.deadline),
                                               min(read, self.deadline)),
                                      stream=True, allow_redirects=False)
        except requests.exceptions.SSLError:
            raise PortalUnreachable(f"the portal's certificate was not accepted ({self.base})") from None
        except requests.exceptions.Timeout:
            raise self._late() from None
        except requests.exceptions.RequestException:
            raise PortalUnreachable(f"could not reach the portal at {self.base}") from None
        try:
            answer = Answer(response.status_code, response.headers, self._read(response, deadline))
        except BaseException:
            response.close()          # and its connection: the rest of that answer is not wanted
            raise
        response.raw.release_conn()   # read whole: the same connection carries the next request
        return answer

    def _read(self, response: requests.Response, deadline: float) -> bytes:
        """The answer's body, taken as it arrives: PortalUnreachable once the deadline passes or
        the body grows past max_answer (the caller then closes the connection).

        A read waits for the portal's next bytes, and a portal that drips them would keep it
        waiting past any check made between reads: so a timer shuts the socket at the deadline
        (urllib3's HTTPResponse.shutdown, made for this), which ends the wait at once."""
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > self.max_answer:
            raise self._too_large()
        raw, body = response.raw, bytearray()
        expired = threading.Event()

        def cut() -> None:
            expired.set()
            try:
                raw.shutdown()
            except (ValueError, RuntimeError, OSError, AttributeError):
                pass          # already closed, or never opened: nothing left to wait for

        timer = threading.Timer(max(0.0, deadline - time.monotonic()), cut)
        timer.daemon = True
        timer.start()
        try:
            while not expired.is_set() and time.monotonic() < deadline:
                try:
                    # Not decoded: the kiosk asks for "identity", and a compressed answer is
                    # refused as not understood rather than inflated past the cap.
                    chunk = raw.read1(_CHUNK, decode_content=False)
                except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
                    raise self._late() from None
                except (urllib3.exceptions.HTTPError, OSError, ValueError):
                    if expired.is_set():
                        break
                    raise PortalUnreachable(f"the portal's answer was cut off "
                                            f"({self.base})") from None
                if not chunk:
                    break
                body += chunk
                if len(body) > self.max_answer:
                    raise self._too_large()
        finally:
            timer.cancel()
        if expired.is_set() or time.monotonic() >= deadline:
            raise self._late()      # what came before the cut is not the whole answer
        return bytes(body)

    def _late(self) -> PortalUnreachable:
        return PortalUnreachable(f"the portal did not answer in time ({self.base})")

    def _too_large(self) -> PortalUnreachable:
        return PortalUnreachable(f"the answer from {self.base} was too large (is this the portal?)")

    def _link(self, response: Answer, key: str, kind: str) -> Link:
        data = _json(response)
        url, expires_in = data.get(key), data.get("expires_in", 30)
        path = urlsplit(url).path if isinstance(url, str) else ""
        at = path.rfind(f"/kiosk/{kind}/")
        if at < 0 or not _LINK[kind].fullmatch(path[at:]) or not isinstance(expires_in, int):
            raise PortalUnreachable("the portal's answer was not understood")
        # The link opens on the portal this device was enrolled with, whatever host it names.
        return Link(self.base + path[at:], expires_in)

    def _failure(self, response: Answer) -> PortalError:
        status = response.status_code
        if status == 401:
            return DeviceRefused("the portal no longer knows this device: enroll it again")
        if status == 429:
            return TooManyTries(_explain(response, "Too many tries, wait a moment."),
                                _retry_after(response))
        if 300 <= status < 400:
            return PortalUnreachable(f"the portal answered with a redirect: check the address "
                                     f"({self.base})")
        if status in (400, 415):
            return PortalError(f"the portal did not understand the kiosk's request (HTTP {status}): "
                               f"this kiosk program may not match the portal's version; install the "
                               f"one that comes with the portal")
        if status == 503:
            return PortalUnreachable(f"the portal is unavailable for now ({self.base})",
                                     _retry_after(response, OFFLINE_RETRY_SECONDS))
        return PortalUnreachable(f"the portal answered {status} ({self.base})")


def _json(response: Answer) -> dict:
    # RecursionError: JSON nested thousands deep ("[[[[...") is beyond Python's parser.
    try:
        data = response.json()
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise PortalUnreachable("the portal's answer was not understood (is this the portal?)")
    return data


def _explain(response: Answer, default: str) -> str:
    """The portal's own short error and advice, when it gave them, as one plain line: only for
    its answers to a person (a pairing code refused, too many tries)."""
    try:
        data = response.json()
    except (ValueError, RecursionError):
        return default
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        advice = data.get("advice") if isinstance(data.get("advice"), str) else ""
        return plain(f"{data['error']}. {advice}") or default
    return default


def _retry_after(response: Answer, default: float = 10.0) -> float:
    """The Retry-After seconds (1 to MAX_RETRY_AFTER), or `default` when absent or unreadable."""
    try:
        return min(MAX_RETRY_AFTER, max(1.0, float(response.headers.get("Retry-After", default))))
    except ValueError:
        return default
