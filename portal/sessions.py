"""Server-side sessions in Redis.

The cookie carries only a random 256-bit id, signed with itsdangerous; everything else stays in
Redis. Sessions are indexed by person so that all of a person's sessions can end at once.

A visitor who has signed in to nothing and started nothing (the sign-in page, a kiosk's scan
page) costs Redis nothing: the CSRF token of such a session is derived from its id with the
app's secret (an HMAC), so the id in the cookie is all there is. Only a session that holds
something more is stored. A page that anyone can load must not be a way to fill Redis. The
cookie of such a visitor is signed for a visitor (another salt), so that their next request,
the sign-in form's post, need not look for a stored session that cannot be there.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable

import redis
from redis.commands.core import Script
from flask import Flask, Request, Response, current_app, g, request, session
from flask.sessions import SessionInterface, SessionMixin
from itsdangerous import BadSignature, Signer
from werkzeug.datastructures import CallbackDict

from portal.errors import make_unavailable
from portal.redis_store import RedisUnavailable, redis_said

PREFIX = "portal:session:"
PERSON_INDEX = "portal:person-sessions:"
# What a session started elsewhere (an app it signed in to), to be told when it ends: a set per
# session, under a digest of its id, of members only the listeners read (portal.sso.oidc.backchannel).
TIES = "portal:session-ties:"
# Set when a session's ties are taken at its end, so that a tie made after (an app exchanging a
# code the session got just before it ended) is refused rather than kept with no one to take it.
ENDED = "portal:session-ended:"
ENDED_SECONDS = 600   # longer than an authorization code lives
# A tie naming the session itself, so that a sweep can see it has gone (timed out idle, which
# nothing is told of when it happens) and tell the listeners then.
_WATCH = "@session "
# The watched sessions (those with a watch tie) by id, each scored by its idle deadline (seconds
# since the epoch, by the clock of the server that last slid it): whatever slides a watched
# session's idle time-out moves its score in the same round trip, so the sweep reads only the
# sessions whose deadline has passed. A score is a hint of when to look, never taken as the end:
# the sweep ends only a session whose key Redis no longer holds.
WATCHED = "portal:sessions-watched"
# Set once the first sweep after the upgrade that brought WATCHED has entered the sessions watched
# before it (found by one SCAN of the keyspace); FILLING is held while that runs.
WATCHED_FILLED = "portal:sessions-watched-filled"
WATCHED_FILLING = "portal:sessions-watched-filling"
SWEEP_BATCH = 500        # sessions whose deadline passed, looked at in one round of the sweep
SWEEP_LIMIT = 100_000    # looked at in one run at most (the next run goes on with the rest)
FILL_BATCH = 500         # keys the one-time fill reads a round
RECHECK_SECONDS = 3600   # a watched session with no time-out (none should be) is looked at again
_LISTENERS = "portal.session_ended"
CSRF_FIELD = "csrf_token"           # Flask-WTF's key in the session (WTF_CSRF_FIELD_NAME)

log = logging.getLogger(__name__)

# KEYS: the session, WATCHED; ARGV: the default idle time-out in seconds, the time now, the
# session's id. Read the session and slide its idle time-out in one round trip: its own (`_idle`,
# a kiosk's shorter one) when it has one, else the default. A kiosk session read with GETEX and the
# default needed a second EXPIRE every request. A watched session's deadline slides with it (XX:
# a session no app is to hear of is not added).
_OPEN = Script(None, b"""
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local idle = tonumber(ARGV[1])
local ok, data = pcall(cjson.decode, raw)
if ok and type(data) == 'table' then
  local own = tonumber(data['_idle'])
  if own and own >= 1 then idle = math.floor(own) end
end
redis.call('EXPIRE', KEYS[1], idle)
redis.call('ZADD', KEYS[2], 'XX', tonumber(ARGV[2]) + idle, ARGV[3])
return raw
""")


# KEYS: a person's session index; ARGV: the sessions' key prefix. Drop the ids of sessions that
# ended on their own: an idle time-out leaves its id in the index, and every sign-in pushes the
# index's expiry out again, so a person who signs in often would keep every id they ever had.
# Run at a sign-in that finds the index grown past PRUNE_ABOVE ids (its size rides in the save's
# pipeline; the pruning costs a round trip only then). (The session keys come from the members,
# not from KEYS: the portal runs on one Redis, not a cluster.)
PRUNE_ABOVE = 16
_PRUNE = Script(None, b"""
local gone = 0
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. sid) == 0 then
    redis.call('SREM', KEYS[1], sid)
    gone = gone + 1
  end
end
return gone
""")


class RedisSession(CallbackDict, SessionMixin):
    """A session whose data lives in Redis under `sid`."""

    def __init__(self, initial=None, sid: str | None = None, new: bool = False,
                 unavailable: str = ""):
        def on_update(self):
            self.modified = True

        super().__init__(initial, on_update)
        self.sid = sid
        self.new = new
        self.modified = False
        # Why Redis could not give this request its session (redis_said), or "" when it did.
        self.unavailable = unavailable
        # The stored session this one replaces (rotate), deleted when this one is saved.
        self.replaces: str | None = None
        # The idle time-out Redis was given when the session was read (_OPEN), if any.
        self.touched_idle: int | None = None
        # Who the stored session belonged to, so ending it also clears the person's index.
        self.loaded_user_id = (initial or {}).get("_user_id")
        # Commands to send with the save, in its one round trip: callables taking the pipeline.
        self.on_save: list[Callable] = []
        # Checks sent last in the save's round trip: (queue(pipe), then(result)) pairs; `then`
        # runs once the save is done, with what its command returned.
        self.after_save: list[tuple[Callable, Callable]] = []
        # Run once the session is stored (or needed no write), before the response leaves: a
        # database write that must stand only if the session's does (a launch's release record,
        # which must not tell of a sign-in the 503 page kept from the app). Not run when the
        # save failed or the response is an error; a callable that fails gives the 503 page.
        self.when_stored: list[Callable[[], None]] = []
        # Run when the request ends in the portal's own failure (a 5xx answer, the save's own
        # among them) rather than in an answer: what counts only an answered try is taken back
        # (a sign-in or scan counted against its limit before the database or Redis failed).
        self.if_failed: list[Callable[[], None]] = []
        # Whether the request's cookie carried this (unstored) session's id as a visitor's.
        self.carried = False
        # Set when all the request wrote here is messages for the next page (flash) and its
        # answer must reach the browser even if they cannot be stored (a sheet of badges already
        # committed: portal.teacher.forms.note_for_next_page): a failed save then loses the
        # messages, not the answer.
        self.only_messages = False

    def holds_nothing_to_store(self) -> bool:
        """True for an unstored session nothing has written to: it holds only the CSRF token
        derived from its id (see anonymous_csrf_token), which any write would follow into Redis."""
        return self.new and not self.modified

    def rotate(self) -> None:
        """Give this session a new id now; the old one is deleted at the save (call at sign-in)."""
        if self.sid is None:
            return
        if not self.new and self.replaces is None:
            self.replaces = self.sid
        self.sid = _new_sid()
        self.new = True
        self.modified = True


def _new_sid() -> str:
    return secrets.token_urlsafe(32)


def session_ref(sid: str) -> str:
    """A name for a session that is not its id (the id is the bearer secret of its cookie)."""
    return hashlib.sha256(b"portal-session-ref:" + sid.encode()).hexdigest()[:32]


def tie_to_session(client: redis.Redis, ref: str, member: str, seconds: int) -> bool:
    """Remember `member` with the session named `ref` (session_ref), for the listeners of its
    end; False, keeping nothing, when that session has ended already."""
    pipe = client.pipeline()   # MULTI: an end cannot fall between the add and the look
    pipe.sadd(TIES + ref, member)
    pipe.expire(TIES + ref, max(int(seconds), 1))
    pipe.exists(ENDED + ref)
    if not pipe.execute()[2]:
        return True
    client.srem(TIES + ref, member)
    return False


def watch_session(client: redis.Redis, sid: str, seconds: int, idle: int) -> None:
    """Let sweep_ended_sessions find this session's ties once it has gone without an ending: its
    watch tie, and its place in WATCHED at its idle deadline (`idle`: the time-out its key has)."""
    pipe = client.pipeline()
    pipe.sadd(TIES + session_ref(sid), _WATCH + sid)
    pipe.expire(TIES + session_ref(sid), max(int(seconds), 1))
    pipe.zadd(WATCHED, {sid: time.time() + idle})
    pipe.execute()


# KEYS: WATCHED, then n sessions' keys, their ties and their end marks; ARGV: the time now,
# ENDED_SECONDS, RECHECK_SECONDS, the n sessions' ids. For each session, whose deadline was seen to
# have passed: if Redis still holds it (slid since by a request, or scored by a clock ahead of
# Redis's), move its deadline to the one its key has; if it has gone, claim it (the ZREM that
# removes it; a sweep running beside this one, or the ending that took its ties, gets 0) and take
# its ties. One script, so nothing falls between the look and the claim. Returns the ties of each
# session claimed. The end mark is set only where none is: a session carried to a new id (its
# entry left here, to be claimed with no ties) keeps the mark that names the new one.
_SWEEP = Script(None, b"""
local n = (#KEYS - 1) / 3
local now = tonumber(ARGV[1])
local taken = {}
for i = 1, n do
  local sid = ARGV[3 + i]
  local left = redis.call('PTTL', KEYS[1 + i])
  if left == -2 then
    if redis.call('ZREM', KEYS[1], sid) == 1 then
      taken[#taken + 1] = redis.call('SMEMBERS', KEYS[1 + n + i])
      redis.call('DEL', KEYS[1 + n + i])
      redis.call('SET', KEYS[1 + 2 * n + i], 1, 'NX', 'EX', ARGV[2])
    end
  else
    local wait = tonumber(ARGV[3])
    if left >= 0 then wait = math.max(left, 1) / 1000 end
    redis.call('ZADD', KEYS[1], 'XX', now + wait, sid)
  end
end
return taken
""")


def sweep_ended_sessions(client: redis.Redis, *, limit: int | None = None) -> int:
    """Tell the listeners of the watched sessions that have gone without an ending (an idle
    time-out); return how many had something to tell. Reads only the sessions whose deadline has
    passed, oldest first, SWEEP_BATCH at a time, at most `limit` (SWEEP_LIMIT) a run: those it
    looked at leave WATCHED or move to their later deadline, so the next run (cron, every few
    minutes: `portal sessions sweep`) goes on with the rest. Sweeps running at once tell each
    session's listeners once. The first run after the upgrade that brought WATCHED enters the
    sessions watched before it, by one look through the keyspace (fill_watched_once)."""
    limit = SWEEP_LIMIT if limit is None else limit
    fill_watched_once(client)
    now = time.time()
    told = looked = 0
    while looked < limit:
        due = client.zrangebyscore(WATCHED, "-inf", now, start=0,
                                   num=min(SWEEP_BATCH, limit - looked))
        if not due:
            break
        looked += len(due)
        sids = [sid.decode() for sid in due]
        refs = [session_ref(sid) for sid in sids]
        taken = _SWEEP([WATCHED, *(PREFIX + sid for sid in sids), *(TIES + ref for ref in refs),
                        *(ENDED + ref for ref in refs)],
                       [now, ENDED_SECONDS, RECHECK_SECONDS, *sids], client=client)
        _tell_ended(taken, range(len(taken)))
        told += sum(1 for ties in taken if any(not t.decode().startswith(_WATCH) for t in ties))
    return told


def fill_watched_once(client: redis.Redis) -> int:
    """Enter in WATCHED the watched sessions it does not hold (those watched before the upgrade
    that brought it), each at the deadline its key has (now, if it has gone); once: a marker
    (WATCHED_FILLED) says it was done, and a sweep that finds another filling goes on without.
    Return how many were entered. Costs one look through the keyspace (SCAN), once."""
    if client.exists(WATCHED_FILLED) or not client.set(WATCHED_FILLING, 1, nx=True, ex=3600):
        return 0
    try:
        entered, keys = 0, []
        for key in client.scan_iter(match=TIES + "*", count=FILL_BATCH):
            keys.append(key)
            if len(keys) >= FILL_BATCH:
                entered += _fill(client, keys)
                keys = []
        entered += _fill(client, keys)
        client.set(WATCHED_FILLED, 1)
        return entered
    finally:
        client.delete(WATCHED_FILLING)


def _fill(client: redis.Redis, keys: list[bytes]) -> int:
    if not keys:
        return 0
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.smembers(key)
    sids = [m.decode()[len(_WATCH):] for members in pipe.execute() for m in members
            if m.decode().startswith(_WATCH)]
    if not sids:
        return 0
    for sid in sids:
        pipe.pttl(PREFIX + sid)
    now = time.time()
    # NX: an entry the hot path made meanwhile is newer. A deadline read just before a request
    # slid it is early, which costs the sweep a look, not an ending.
    return client.zadd(WATCHED, {sid: now + (left / 1000 if left >= 0 else 0)
                                 for sid, left in zip(sids, pipe.execute())}, nx=True)


def take_ties(client: redis.Redis, person_id: int, wanted: Callable[[str], bool]) -> list[str]:
    """Take, from the person's sessions, the ties `wanted` picks (an app they may no longer use),
    leaving the sessions and their other ties as they are; return the ties taken."""
    sids = [sid.decode() for sid in client.smembers(PERSON_INDEX + str(person_id))]
    if not sids:
        return []
    pipe = client.pipeline()
    for sid in sids:
        pipe.smembers(TIES + session_ref(sid))
    taken, pipe_out = [], client.pipeline()
    for sid, members in zip(sids, pipe.execute()):
        for member in members:
            if wanted(member.decode()):
                taken.append(member.decode())
                pipe_out.srem(TIES + session_ref(sid), member)
    if taken:
        pipe_out.execute()
    return taken


def listen_for_ended_sessions(app: Flask, listener: Callable[[list[str]], None]) -> None:
    """Call `listener` with the ties of sessions as they end (in the app context that ends them)."""
    app.extensions.setdefault(_LISTENERS, []).append(listener)


def _tell_ended(results: list, places: list[int]) -> None:
    """Hand the ties taken in a pipeline (at `places` in its results) to the listeners. Ending a
    session must not fail because of what listens: a listener's error is logged, not raised."""
    ties = [m.decode() for at in places for m in (results[at] or ())]
    ties = [t for t in ties if not t.startswith(_WATCH)]
    if not ties:
        return
    for listener in current_app.extensions.get(_LISTENERS, ()):
        try:
            listener(ties)
        except Exception as e:  # noqa: BLE001
            log.warning("telling of ended sessions failed: %s", type(e).__name__)


def anonymous_csrf_token(app: Flask, sid: str) -> str:
    """The CSRF token of a session that is not stored: only the holder of the (signed, HttpOnly)
    id and the app's secret can know it, as with a random token kept in Redis."""
    key = app.secret_key.encode() if isinstance(app.secret_key, str) else app.secret_key
    return hmac.new(key, b"portal-anonymous-csrf:" + sid.encode(), hashlib.sha256).hexdigest()


class RedisSessionInterface(SessionInterface):
    """Store sessions in Redis with idle and absolute time-outs."""

    serializer = json

    def _signer(self, app: Flask, *, visitor: bool = False) -> Signer:
        return Signer(app.secret_key, salt="portal-visitor" if visitor else "portal-session",
                      digest_method=hashlib.sha256)

    def _unsign(self, app: Flask, cookie: str, *, visitor: bool) -> str | None:
        try:
            return self._signer(app, visitor=visitor).unsign(cookie).decode()
        except (BadSignature, UnicodeDecodeError):
            return None

    def _client(self, app: Flask) -> redis.Redis:
        return app.extensions["redis"]

    def _idle_seconds(self, app: Flask, session: RedisSession | None = None) -> int:
        own = session.get("_idle") if session is not None else None
        if isinstance(own, (int, float)) and own >= 1:    # as the _OPEN script reads it
            return int(own)
        return app.config["SETTINGS"].session_idle_minutes * 60

    def max_seconds(self, app: Flask, data: dict) -> int:
        """The longest a session with this data may live: its own (`_max`, a badge's) or the
        setting's."""
        if data.get("_max"):
            return int(data["_max"])
        return app.config["SETTINGS"].session_max_hours * 3600

    def peek(self, app: Flask, request: Request) -> dict | None:
        """The stored session of the request's cookie, read without sliding its idle time-out:
        None when there is none (no cookie, a visitor's, ended, idle, past its longest life).
        Redis errors are the caller's to answer. It does not repeat what loading the person checks
        in the database (enabled, not on hold): holds, voids and imports end the stored sessions."""
        cookie = request.cookies.get(self.get_cookie_name(app))
        sid = self._unsign(app, cookie, visitor=False) if cookie else None
        data = self._parsed(self._client(app).get(PREFIX + sid)) if sid else None
        return None if data is None or self._past_longest_life(app, data) else data

    def _parsed(self, raw: bytes | None) -> dict | None:
        """A stored session's data (None: nothing stored, or not a session's)."""
        if raw is None:
            return None
        try:
            data = self.serializer.loads(raw)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _past_longest_life(self, app: Flask, data: dict) -> bool:
        return time.time() - float(data.get("_created", 0)) > self.max_seconds(app, data)

    def _unstored(self, app: Flask, sid: str, carried: bool = False) -> RedisSession:
        """A session not (or no longer) in Redis, holding only its derived CSRF token."""
        session = RedisSession({CSRF_FIELD: anonymous_csrf_token(app, sid)}, sid=sid, new=True)
        session.carried = carried
        return session

    def open_session(self, app: Flask, request: Request) -> RedisSession:
        # Static files and the health check need no session: they keep answering while Redis is
        # away, and a monitor polling with a cookie does not keep that session alive.
        if _sessionless(app, request):
            return RedisSession(sid=None, new=True)
        cookie = request.cookies.get(self.get_cookie_name(app))
        if not cookie:
            return self._unstored(app, _new_sid())
        sid = self._unsign(app, cookie, visitor=False)
        if sid is None:
            # A visitor's cookie: nothing stored to read. The id stays, so that the token of
            # the form its page handed out still matches; a sign-in gives a new id all the same.
            visitor = self._unsign(app, cookie, visitor=True)
            return self._unstored(app, visitor or _new_sid(), carried=visitor is not None)
        try:
            raw = _OPEN([PREFIX + sid, WATCHED], [self._idle_seconds(app), time.time(), sid],
                        client=self._client(app))
            if raw is None:
                # Timed out idle, or ended: a session with nothing in it, under the same id.
                return self._unstored(app, sid)
            data = self._parsed(raw)
            if data is None or self._past_longest_life(app, data):
                self._delete(app, sid, data or {})
                return self._unstored(app, _new_sid())
        except redis.RedisError as e:
            return RedisSession(sid=sid, unavailable=redis_said(e))    # for the log, at the 503
        session = RedisSession(data, sid=sid)
        session.touched_idle = self._idle_seconds(app, session)  # what the script gave it
        return session

    def _delete(self, app: Flask, sid: str, data: dict, pipe=None) -> int:
        """End a stored session (in `pipe`, if given: return where its ties are in the results)."""
        own = pipe is None
        pipe = self._client(app).pipeline() if own else pipe
        at = _queue_end(pipe, sid, data.get("_user_id"))
        if own:
            _tell_ended(pipe.execute(), [at])
        return at

    def save_session(self, app: Flask, session: RedisSession, response: Response) -> None:
        try:
            self._save_or_refuse(app, session, response)
        finally:
            if response.status_code >= 500:
                for take_back in session.if_failed:
                    take_back()

    def _save_or_refuse(self, app: Flask, session: RedisSession, response: Response) -> None:
        if session.unavailable or session.sid is None:
            return
        try:
            self._save(app, session, response)
        except redis.RedisError as e:
            # Redis went away during the request. A change we could not store (a sign-in, a
            # sign-out) must not look as if it had worked.
            log.warning("redis unavailable while saving a session: %s", redis_said(e))
            if session.modified and not session.only_messages:
                make_unavailable(response)
                return
        if session.when_stored and response.status_code < 500:
            try:
                for then in session.when_stored:
                    then()
            except Exception as e:
                log.warning("a write that goes with the session failed: %s", type(e).__name__)
                make_unavailable(response)

    def _save(self, app: Flask, session: RedisSession, response: Response) -> None:
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        client = self._client(app)

        if not session:
            stored = session.replaces or (None if session.new else session.sid)
            if stored:
                self._delete(app, stored, {"_user_id": session.loaded_user_id})
                # With the attributes it was set with: a browser ignores the removal of a
                # __Host- cookie (production's) that is not Secure.
                response.delete_cookie(name, domain=domain, path=path,
                                       secure=self.get_cookie_secure(app),
                                       httponly=self.get_cookie_httponly(app),
                                       samesite=self.get_cookie_samesite(app))
            return

        if response.status_code >= 500 and (session.new or session.replaces):
            # A sign-in that failed on its way (its audit record could not be written, say)
            # must not leave the browser signed in behind an error page: nothing is stored, and
            # the session the browser had stays as it was.
            return

        if session.holds_nothing_to_store() and not session.replaces:
            # Nothing to store. A visitor's cookie is set when this response hands out the
            # session's token (a form) and the request did not carry it already. A form whose
            # post cannot work says so now (a ping), not after a child has typed a password.
            if CSRF_FIELD in g:
                try:
                    client.ping()
                except redis.RedisError as e:
                    log.warning("redis unavailable for a visitor's form: %s", redis_said(e))
                    make_unavailable(response)
                    return
                if not session.carried:
                    self._set_cookie(app, session, response, visitor=True)
            response.vary.add("Cookie")
            return

        pipe = client.pipeline()
        ended = []
        idle = self._idle_seconds(app, session)
        if session.replaces:
            if session.loaded_user_id and session.get("_user_id") == session.loaded_user_id:
                # The same person signing in again: what the old session started goes on.
                _queue_carry(pipe, session.replaces, session.sid, self.max_seconds(app, session),
                             idle)
                _queue_end(pipe, session.replaces, session.loaded_user_id, with_ties=False)
            else:
                ended.append(self._delete(app, session.replaces,
                                          {"_user_id": session.loaded_user_id}, pipe))
            session.replaces = None

        index_size = None
        if session.new or session.modified:
            data = dict(session)
            data.setdefault("_created", time.time())
            session.setdefault("_created", data["_created"])
            # xx: a session ended while this request ran (password reset, badge void) must
            # stay ended, not be written back by the request's own save.
            pipe.set(PREFIX + session.sid, self.serializer.dumps(data), ex=idle,
                     xx=not session.new)
            if not session.new:   # its deadline, if watched (a new id is not, unless carried)
                pipe.zadd(WATCHED, {session.sid: time.time() + idle}, xx=True)
            if data.get("_user_id"):
                key = PERSON_INDEX + str(data["_user_id"])
                pipe.sadd(key, session.sid)
                if session.new:  # a sign-in: how many ids the index holds now
                    pipe.scard(key)
                    index_size = (key, len(pipe) - 1)
                # The longest any session may live, not this one's own: the index finds all of
                # the person's sessions, and a short one (a temporary badge's) must not take the
                # others' entries with it when it expires.
                pipe.expire(key, app.config["SETTINGS"].session_max_hours * 3600)
            for command in session.on_save:
                command(pipe)
            checks = []
            for queue, then in session.after_save:
                queue(pipe)
                checks.append((len(pipe) - 1, then))
            results = pipe.execute()
            _tell_ended(results, ended)
            for at, then in checks:
                then(results[at])
            if index_size and results[index_size[1]] > PRUNE_ABOVE:
                _PRUNE([index_size[0]], [PREFIX], client=client)
            self._set_cookie(app, session, response)
        elif idle != session.touched_idle:
            # Sliding idle time-out: reading the session (_OPEN) touched it with another.
            pipe = client.pipeline(transaction=False)
            pipe.expire(PREFIX + session.sid, idle)
            pipe.zadd(WATCHED, {session.sid: time.time() + idle}, xx=True)
            pipe.execute()
        response.vary.add("Cookie")

    def _set_cookie(self, app: Flask, session: RedisSession, response: Response, *,
                    visitor: bool = False) -> None:
        response.set_cookie(
            self.get_cookie_name(app),
            self._signer(app, visitor=visitor).sign(session.sid).decode(),
            httponly=self.get_cookie_httponly(app),
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
        )


# Paths that read no session: a read would slide its idle time-out. The health check (a monitor
# polling with a cookie must not keep that session alive), and the question a badge's tiles page
# asks every few seconds, "is my sign-in still on?" (asking must not keep it on).
SESSIONLESS_PATHS = frozenset({"/healthz", "/badges/alive"})


def _sessionless(app: Flask, request: Request) -> bool:
    """Whether the request needs no session: a static file, or one of SESSIONLESS_PATHS."""
    return request.path in SESSIONLESS_PATHS or bool(
        app.static_url_path and request.path.startswith(app.static_url_path + "/"))


def require_session_store() -> None:
    """Stop a request early with the plain 503 page when Redis cannot be reached.

    Registered before the CSRF check, so a missing session store reads as "unavailable", not as
    a stale form.
    """
    if request.endpoint == "static" or _sessionless(current_app, request):
        return
    if getattr(session, "unavailable", ""):
        raise RedisUnavailable(session.unavailable)
    # A new session on a safe request needs Redis only if the page stores something, and then
    # save_session answers 503 itself; a form post must not read as a stale CSRF token instead.
    # A post without a CSRF token (a kiosk's or an app's API call) is not such a form, and nor is
    # a visitor's post (the sign-in form): its token holds without Redis, and what it asks for
    # meets Redis (the sign-in limits) before anything else.
    if getattr(session, "new", False) and not getattr(session, "carried", False) and \
            request.method not in ("GET", "HEAD", "OPTIONS") and (
            "X-CSRFToken" in request.headers or "csrf_token" in request.form):
        current_app.extensions["redis"].ping()


def _queue_end(pipe, sid: str, person_id, *, with_ties: bool = True) -> int:
    """Add to `pipe` what ends one stored session: its data, its place in the person's index,
    and its ties (taken: return where they will be in the pipeline's results, for _tell_ended),
    with its place in WATCHED: the sweep has nothing left to tell of it."""
    pipe.delete(PREFIX + sid)
    if person_id:
        pipe.srem(PERSON_INDEX + str(person_id), sid)
    if not with_ties:
        return -1
    ref = session_ref(sid)
    pipe.smembers(TIES + ref)
    at = len(pipe) - 1
    pipe.delete(TIES + ref)
    pipe.set(ENDED + ref, 1, ex=ENDED_SECONDS)
    pipe.zrem(WATCHED, sid)
    return at


# A session's ties move to the session that replaces it (a sign-in again by the same person), and
# its watch with them only if it was watched: a session no app is to hear of does not enter
# WATCHED (found by review: every sign-in again entered one, and without the sweep from cron the
# set grew for ever). The old session leaves WATCHED now: its ties have moved.
# KEYS: the old ties, the new ties, WATCHED, the old session's end mark; ARGV: the old and new
# session ids, the new one's idle deadline, the ties' lifetime in seconds, the end mark's value and
# lifetime, the watch tie's prefix.
_CARRY = """
redis.call('SUNIONSTORE', KEYS[2], KEYS[2], KEYS[1])
redis.call('DEL', KEYS[1])
local watched = redis.call('ZREM', KEYS[3], ARGV[1]) == 1
if redis.call('SREM', KEYS[2], ARGV[7] .. ARGV[1]) == 1 then watched = true end
if watched then
  redis.call('SADD', KEYS[2], ARGV[7] .. ARGV[2])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
end
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('SET', KEYS[4], ARGV[5], 'EX', ARGV[6])
return 0
"""


def _queue_carry(pipe, old_sid: str, new_sid: str, seconds: int, idle: int) -> None:
    """Add to `pipe` what moves a session's ties to the session that replaces it (`idle`: the new
    one's idle time-out), and its watch if it was watched. The old one is marked ended all the
    same: a tie made to it later would have no session left to take it. Its mark names the
    session that goes on: a code the old one got just before is still the same person's, signed
    in (portal.sso.oidc.store follows the mark)."""
    # EVAL, not EVALSHA: a script object in a pipeline costs a SCRIPT EXISTS round trip first.
    pipe.eval(_CARRY, 4, TIES + session_ref(old_sid), TIES + session_ref(new_sid), WATCHED,
              ENDED + session_ref(old_sid), old_sid, new_sid, time.time() + idle, max(int(seconds), 1),
              "=" + session_ref(new_sid), ENDED_SECONDS, _WATCH)


def end_session(client: redis.Redis, person_id: int, sid: str) -> int:
    """End one session of a person by its id; return 1 if it was still there, else 0."""
    return _end_one(client, person_id, sid, read=False)[0]


def take_session(client: redis.Redis, person_id: int, sid: str) -> dict | None:
    """End one session of a person by its id, in the same round trip reading what it held (None:
    it had ended already)."""
    raw = _end_one(client, person_id, sid, read=True)[0]
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _end_one(client: redis.Redis, person_id: int, sid: str, *, read: bool) -> list:
    """End one session in one round trip (first reading it, with `read`); the pipeline's results."""
    pipe = client.pipeline()
    if read:
        pipe.get(PREFIX + sid)
    at = _queue_end(pipe, sid, person_id)
    results = pipe.execute()
    _tell_ended(results, [at])
    return results


def end_sessions_where(client: redis.Redis, person_id: int,
                       predicate: Callable[[dict], bool]) -> int:
    """End the person's sessions whose stored data matches; return how many ended."""
    key = PERSON_INDEX + str(person_id)
    sids = [sid.decode() for sid in client.smembers(key)]
    if not sids:
        return 0
    raws = client.mget([PREFIX + sid for sid in sids])
    doomed, stale = [], []
    for sid, raw in zip(sids, raws):
        if raw is None:
            stale.append(sid)
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            data = {}
        if not isinstance(data, dict) or predicate(data):
            doomed.append(sid)
    if not doomed and not stale:
        return 0
    pipe = client.pipeline()
    for sid in doomed:
        pipe.delete(PREFIX + sid)
    places = []
    for sid in doomed + stale:
        pipe.srem(key, sid)
        # A stale session timed out idle without telling anyone: tell now, late but not never.
        places.append(len(pipe))
        pipe.smembers(TIES + session_ref(sid))
        pipe.delete(TIES + session_ref(sid))
        pipe.set(ENDED + session_ref(sid), 1, ex=ENDED_SECONDS)
    pipe.zrem(WATCHED, *doomed, *stale)
    results = pipe.execute()
    _tell_ended(results, places)
    return sum(1 for n in results[:len(doomed)] if n)


def end_sessions_for(client: redis.Redis, person_id: int) -> int:
    """End every session of one person; return how many were ended."""
    return end_sessions_where(client, person_id, lambda data: True)
