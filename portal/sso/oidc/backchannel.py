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
nobody at that moment; the next scan on its kiosk, or any later ending of the person's sessions,
tells its apps then.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor, wait
from urllib.parse import urlencode, urlsplit

from flask import Flask

from portal.db import db
from portal.sessions import listen_for_ended_sessions, take_ties, tie_to_session

log = logging.getLogger(__name__)

EVENT = "http://schemas.openid.net/event/backchannel-logout"
TOKEN_TYPE = "logout+jwt"
TOKEN_SECONDS = 120        # a logout token is good for two minutes
SEND_SECONDS = 3.0         # each app has this long to answer
_KIND = "oidc"

_executor: ThreadPoolExecutor | None = None
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
        found = find_client(db.session, client_id)
        uri = found.settings.get("backchannel_logout_uri") if found is not None else None
        if not uri:
            continue   # the app is gone, or no longer listens
        token = ring.sign(logout_token_claims(issuer=issuer, client_id=client_id, subject=subject,
                                              sid=sid, now=now), typ=TOKEN_TYPE)
        _send_later(uri, token, found.app.slug)


def _send_later(uri: str, token: str, slug: str) -> None:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="backchannel-logout")
        future = _executor.submit(_send, uri, token, slug)
        _pending.add(future)
    future.add_done_callback(_forget)


def _forget(future: Future) -> None:
    with _lock:
        _pending.discard(future)


def wait_for_deliveries(timeout: float = 10.0) -> bool:
    """Wait until every logout token handed over so far was delivered or given up on (a command
    that ends sessions waits before it exits; so do tests). True when none is left."""
    with _lock:
        pending = set(_pending)
    if not pending:
        return True
    done, not_done = wait(pending, timeout=timeout)
    return not not_done


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None   # an app's answer is its answer: a logout token goes nowhere else


_OPENER = urllib.request.build_opener(_NoRedirects, urllib.request.ProxyHandler({}))


def _send(uri: str, token: str, slug: str) -> None:
    """POST one logout token (application/x-www-form-urlencoded, as the specification says)."""
    if urlsplit(uri).scheme not in ("https", "http"):
        log.warning("back-channel logout to %s skipped: not an http(s) address", slug)
        return
    request = urllib.request.Request(
        uri, data=urlencode({"logout_token": token}).encode(), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "User-Agent": "student-portal back-channel logout"})
    try:
        with _OPENER.open(request, timeout=SEND_SECONDS) as response:
            response.read(1024)
            status = response.status
    except urllib.error.HTTPError as e:
        status = e.code
        e.close()
    except (OSError, ValueError) as e:   # refused, timed out, TLS, a malformed answer
        log.warning("back-channel logout to %s failed: %s", slug, type(e).__name__)
        return
    if status not in (200, 204):
        log.warning("back-channel logout to %s: the app answered %s", slug, status)

