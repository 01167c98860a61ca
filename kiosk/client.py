"""Token -> portal. The kiosk's only requests, and all they carry:

    POST /kiosk/enroll  {"code": CODE}                                  -> the device credential
    POST /kiosk/bind    {}                 Authorization: Bearer <cred> -> a bind URL
    POST /kiosk/badge   {"token": TOKEN}   Authorization: Bearer <cred> -> a hand-off URL

No frame, no device name or fingerprint, no extra key; a fixed User-Agent without versions.
Proxies come from the environment, but never ~/.netrc (requests would let it replace the
Authorization header). Redirects are not followed, so the credential goes nowhere else. Links
the portal answers with are rebuilt on the portal's own address before anything opens them.
"""
from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

USER_AGENT = "student-portal-kiosk"
TIMEOUT = (3.05, 10.0)          # seconds to connect, seconds to wait for the answer
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


class TooManyTries(PortalError):
    """429: wait `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


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


class PortalClient:
    """The device's side of the kiosk API (one keep-alive connection, timeouts on every call)."""

    def __init__(self, portal: str, credential: str | None = None, *, timeout=TIMEOUT):
        self.base = portal_base(portal)
        self._credential = credential
        self.timeout = timeout
        self.http = requests.Session()
        self.http.trust_env = False       # no ~/.netrc; proxies and CA bundle set explicitly
        self.http.proxies = requests.utils.get_environ_proxies(self.base)
        self.http.verify = os.environ.get("REQUESTS_CA_BUNDLE") or True
        self.http.headers.clear()
        self.http.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})

    def close(self) -> None:
        self.http.close()

    def __repr__(self) -> str:
        return f"PortalClient({self.base!r})"

    def enroll(self, code: str) -> dict:
        """Trade a pairing code for {device_id, name, school, credential}."""
        response = self._post("/kiosk/enroll", {"code": code}, authorized=False)
        if response.status_code == 201:
            data = _json(response)
            try:
                return {"device_id": int(data["device_id"]), "name": str(data["name"]),
                        "school": str(data["school"]), "credential": _text(data["credential"])}
            except (KeyError, TypeError, ValueError):
                raise PortalUnreachable("the portal's answer was not understood") from None
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

    def send_badge(self, token: str) -> Link:
        """Send a scanned token; return the hand-off URL for this device's browser."""
        response = self._post("/kiosk/badge", {"token": token})
        if response.status_code == 200:
            return self._link(response, "handoff_url", "handoff")
        if response.status_code == 403:
            raise BadgeRefused("That badge didn't work.")
        raise self._failure(response)

    def _post(self, path: str, body: dict, *, authorized: bool = True) -> requests.Response:
        headers = {}
        if authorized:
            if not self._credential:
                raise DeviceRefused("this device is not enrolled")
            headers["Authorization"] = f"Bearer {self._credential}"
        try:
            return self.http.post(self.base + path, json=body, headers=headers,
                                  timeout=self.timeout, allow_redirects=False)
        except requests.exceptions.SSLError:
            raise PortalUnreachable(f"the portal's certificate was not accepted ({self.base})") from None
        except requests.exceptions.Timeout:
            raise PortalUnreachable(f"the portal did not answer in time ({self.base})") from None
        except requests.exceptions.RequestException:
            raise PortalUnreachable(f"could not reach the portal at {self.base}") from None

    def _link(self, response: requests.Response, key: str, kind: str) -> Link:
        data = _json(response)
        url, expires_in = data.get(key), data.get("expires_in", 30)
        path = urlsplit(url).path if isinstance(url, str) else ""
        at = path.rfind(f"/kiosk/{kind}/")
        if at < 0 or not _LINK[kind].fullmatch(path[at:]) or not isinstance(expires_in, int):
            raise PortalUnreachable("the portal's answer was not understood")
        # The link opens on the portal this device was enrolled with, whatever host it names.
        return Link(self.base + path[at:], expires_in)

    def _failure(self, response: requests.Response) -> PortalError:
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
            return PortalError(_explain(response, "the portal did not accept the request"))
        if status == 503:
            return PortalUnreachable(_explain(response, f"the portal is unavailable ({self.base})"),
                                     _retry_after(response, OFFLINE_RETRY_SECONDS))
        return PortalUnreachable(f"the portal answered {status} ({self.base})")


def _json(response: requests.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise PortalUnreachable("the portal's answer was not understood (is this the portal?)")
    return data


def _text(value) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("not text")
    return value


def _explain(response: requests.Response, default: str) -> str:
    """The portal's own short error and advice, when it gave them."""
    try:
        data = response.json()
    except ValueError:
        return default
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        advice = data.get("advice") if isinstance(data.get("advice"), str) else ""
        line = f"{data['error']}. {advice}".strip()
        return " ".join(line.split())[:200]
    return default


def _retry_after(response: requests.Response, default: float = 10.0) -> float:
    """The Retry-After seconds (1 to MAX_RETRY_AFTER), or `default` when absent or unreadable."""
    try:
        return min(MAX_RETRY_AFTER, max(1.0, float(response.headers.get("Retry-After", default))))
    except ValueError:
        return default
