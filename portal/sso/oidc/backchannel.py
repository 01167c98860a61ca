"""OpenID Connect Back-Channel Logout 1.0: when a student's portal session ends, the apps it signed
in to hear so, server to server, and can end their own sessions.

A portal session ends when the student signs out ("Not you? Sign out"), when the next child scans
a badge at the same kiosk, at the bell, at a password reset, a voided badge or a security hold. On
a shared Chromebook the app tabs stay open: without this, the next child opening one finds the
last child's work. An app registered with a back-channel logout URI (`portal apps add-oidc
--backchannel-logout-uri`, or `portal apps logout-uri`) gets ID tokens with `sid`, and the token
endpoint ties (app, subject, sid) to the portal session (portal.sessions.tie_to_session); when
that session ends, a logout token (a JWT of type logout+jwt, signed like ID tokens) is POSTed to
the app.

`sid` is the app's own name for the portal session, an HMAC of the session's name and the client
id: like the pairwise subject, it gives two apps nothing to join their records on. Delivery is
in the background, with a short time-out and no redirects followed; a failure is logged (the app,
never the token) and never holds up the sign-out. A session that simply times out idle tells
nobody at that moment; `portal sessions sweep` (cron) finds it and tells its apps then, and so
does the next scan on its kiosk, or any later ending of the person's sessions.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import secrets
import socket
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from urllib.parse import urlencode, urlsplit

from flask import Flask

from portal.db import db
from portal.sessions import listen_for_ended_sessions, take_ties, tie_to_session

log = logging.getLogger(__name__)

EVENT = "http://schemas.openid.net/event/backchannel-logout"
TOKEN_TYPE = "logout+jwt"
TOKEN_SECONDS = 120        # a logout token is good for two minutes
SEND_SECONDS = 3.0         # each delivery has this long, all told
WORKERS = 8                # deliveries under way at once, in each portal process
PER_APP = 2                # of those, for any one app
QUEUE_LIMIT = 2000         # deliveries waiting for one app before more are dropped (and logged)
_KIND = "oidc"

_executor: ThreadPoolExecutor | None = None
_queues: dict[str, deque] = {}     # app slug -> deliveries waiting
_running: dict[str, int] = {}      # app slug -> deliveries under way
_pending: set[Future] = set()
_lock = threading.Lock()


def logout_sid(pairwise_key: str, client_id: str, ref: str) -> str:
    """The app's `sid` for the portal session named `ref` (portal.sessions.session_ref)."""
    digest = hmac.new(pairwise_key.encode(), f"oidc-sid\0{client_id}\0{ref}".encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def tie(client, ref: str, *, client_id: str, issuer: str, subject: str, sid: str,
        seconds: int) -> bool:
    """Remember that the session named `ref` signed this app in, to tell it at the session's end;
    False when that session has ended already (the student signed out before the exchange)."""
    return tie_to_session(client, ref, json.dumps([_KIND, client_id, issuer, subject, sid]), seconds)


def logout_token_claims(*, issuer: str, client_id: str, subject: str, sid: str, now: int) -> dict:
    """The claims of a logout token (Back-Channel Logout 1.0, 2.4): never a nonce."""
    return {"iss": issuer, "aud": client_id, "iat": now, "exp": now + TOKEN_SECONDS,
            "jti": secrets.token_urlsafe(16), "sub": subject, "sid": sid,
            "events": {EVENT: {}}}


def log_out_of_app(client, person_id: int, client_id: str) -> None:
    """The person may no longer use this app (opted out): tell the app to end the sessions the
    person's portal sessions started there; their other apps stay signed in."""
    def for_this_app(member: str) -> bool:
        try:
            return json.loads(member)[:2] == [_KIND, client_id]
        except (ValueError, TypeError):
            return False
    taken = take_ties(client, person_id, for_this_app)
    if taken:
        sessions_ended(taken)


def init_app(app: Flask) -> None:
    listen_for_ended_sessions(app, sessions_ended)


def sessions_ended(ties: list[str]) -> None:
    """portal.sessions' listener: send a logout token to every app the ended sessions signed in."""
    from portal.sso.oidc.clients import find_client
    from portal.sso.oidc.server import key_ring

    wanted = []
    for member in ties:
        try:
            kind, client_id, issuer, subject, sid = json.loads(member)
        except (ValueError, TypeError):
            continue
        if kind == _KIND and all(isinstance(v, str) for v in (client_id, issuer, subject, sid)):
            wanted.append((client_id, issuer, subject, sid))
    if not wanted:
        return
    ring, now = key_ring(), int(time.time())
    for client_id, issuer, subject, sid in wanted:
        # A removed app too: a student it signed in before it was removed is still signed in there.
        found = find_client(db.session, client_id, removed=True)
        uri = found.settings.get("backchannel_logout_uri") if found is not None else None
        if not uri:
            continue   # the app is gone, or no longer listens
        token = ring.sign(logout_token_claims(issuer=issuer, client_id=client_id, subject=subject,
                                              sid=sid, now=now), typ=TOKEN_TYPE)
        _send_later(uri, token, found.app.slug)


def _send_later(uri: str, token: str, slug: str) -> None:
    """Queue one delivery. Each app has its own queue and at most PER_APP runners, and a runner
    makes one delivery a turn and then queues itself behind every other app's: an app that hangs
    holds up its own logouts only, never another app's."""
    global _executor
    future: Future = Future()
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="backchannel-logout")
        queue = _queues.setdefault(slug, deque())
        if len(queue) >= QUEUE_LIMIT:
            log.warning("back-channel logout to %s dropped: %d already waiting", slug, len(queue))
            return
        queue.append((uri, token, future))
        _pending.add(future)
        if _running.get(slug, 0) >= PER_APP:
            return
        _running[slug] = _running.get(slug, 0) + 1
    _turn_after(slug)


def _turn_after(slug: str) -> None:
    """Give the app's runner its next turn, behind what the pool has queued already. While the
    interpreter exits the pool takes nothing new: the runner then goes on in this thread, so
    that what was queued is delivered all the same."""
    try:
        _executor.submit(_turn, slug)
    except RuntimeError as e:
        if "cannot schedule new futures" not in str(e):
            # Queued all the same (only starting one more thread failed): a thread the pool
            # already has will run it. Running it here too would make the turn twice.
            log.warning("back-channel logout: %s", e)
            return
        while _turn(slug, again=False):
            pass


def _turn(slug: str, again: bool = True) -> bool:
    """Make the app's next delivery; True if there may be more (with `again`: queue the next turn)."""
    with _lock:
        queue = _queues.get(slug)
        if not queue:
            left = _running.get(slug, 0) - 1
            if left > 0:
                _running[slug] = left
            else:
                _running.pop(slug, None)
                _queues.pop(slug, None)
            return False
        uri, token, future = queue.popleft()
    try:
        _send(uri, token, slug)
    except Exception as e:  # noqa: BLE001  a delivery must never take its runner down
        log.warning("back-channel logout to %s failed: %s", slug, type(e).__name__)
    finally:
        with _lock:
            _pending.discard(future)
        future.set_result(None)
    if again:
        _turn_after(slug)
    return True


def wait_for_deliveries(timeout: float = 10.0) -> bool:
    """Wait until every logout token handed over so far was delivered or given up on (tests and
    commands that end sessions). True when none is left."""
    with _lock:
        pending = set(_pending)
    if not pending:
        return True
    done, not_done = wait(pending, timeout=timeout)
    return not not_done


class _Deadline:
    """The end of one delivery's time. It shuts the socket the connection made (plain, then the
    TLS one wrapped round it), which a response reading to the end may hold after the connection
    has let go of it; and it makes a connection still being set up fail as soon as it is."""

    def __init__(self, seconds: float):
        self.lock = threading.Lock()
        self.expired = False
        self.sock: socket.socket | None = None
        self.timer = threading.Timer(seconds, self.cut)
        self.timer.daemon = True

    def holds(self, sock: socket.socket) -> None:
        """From now on the deadline shuts `sock`; too late already: raise."""
        with self.lock:
            self.sock = sock
            if self.expired:
                raise TimeoutError("the delivery's time is up")

    def cut(self) -> None:
        # Under the lock, which done() takes before the socket is closed: a file descriptor
        # closed and given to another delivery's socket meanwhile is never shut by mistake.
        with self.lock:
            self.expired = True
            if self.sock is not None:
                try:
                    # The plain socket's own shutdown, also for a TLS one: it only shuts the
                    # file descriptor, leaving the TLS object to the thread that is using it.
                    socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
                except OSError:
                    pass

    def done(self) -> None:
        """The delivery is over: the deadline lets go of its socket before it is closed."""
        self.timer.cancel()
        with self.lock:
            self.sock = None
            self.expired = True


class _HTTPConnection(http.client.HTTPConnection):
    deadline: _Deadline

    def connect(self):
        super().connect()          # a slow name lookup or connect: looked at once it returns
        self.deadline.holds(self.sock)


class _HTTPSConnection(http.client.HTTPSConnection):
    deadline: _Deadline

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.deadline.holds(self.sock)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host,
                                              do_handshake_on_connect=False)
        self.deadline.holds(self.sock)
        self.sock.do_handshake()


def _connection(parts) -> http.client.HTTPConnection:
    """The connection for an address; the port given explicitly: from an IPv6 literal without
    one, http.client would read the last group of the address as the port."""
    https = parts.scheme == "https"
    return (_HTTPSConnection if https else _HTTPConnection)(
        parts.hostname, parts.port or (443 if https else 80), timeout=SEND_SECONDS)


def _send(uri: str, token: str, slug: str) -> None:
    """POST one logout token (application/x-www-form-urlencoded, as the specification says),
    within SEND_SECONDS all told: an app that answers a byte at a time is cut off at the end, not
    kept waiting on for each byte. No redirect is followed and no proxy is used."""
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        log.warning("back-channel logout to %s skipped: not an http(s) address", slug)
        return
    body = urlencode({"logout_token": token})
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    deadline = _Deadline(SEND_SECONDS)
    try:
        connection = _connection(parts)
    except ValueError as e:
        log.warning("back-channel logout to %s failed: %s", slug, type(e).__name__)
        return
    connection.deadline = deadline
    try:
        deadline.timer.start()
    except RuntimeError:
        # No new thread while the interpreter exits (Python 3.12): the socket's own time-out
        # per read still holds; the whole-delivery deadline does not.
        pass
    try:
        connection.request("POST", path, body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "student-portal back-channel logout"})
        response = connection.getresponse()
        response.read(1024)
        status = response.status
    except (OSError, ValueError, http.client.HTTPException) as e:   # refused, cut off, TLS, garbled
        log.warning("back-channel logout to %s failed: %s", slug, type(e).__name__)
        return
    finally:
        deadline.done()
        connection.close()
    if status not in (200, 204):
        log.warning("back-channel logout to %s: the app answered %s", slug, status)
