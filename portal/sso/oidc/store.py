"""Short-lived OpenID Connect state in Redis: authorization codes, access tokens, nonces, the
markers /authorize leaves when it sends a browser to sign in, and what the logout endpoint keeps
for a browser's next request (park).

Codes and tokens are stored under the SHA-256 of their value, never the value itself. A code is
taken with GETDEL, so it can be exchanged once. Taking it leaves a marker; presenting the code
again finds the marker and revokes every access token the first exchange issued. A code's record
holds what its ID token will say (the claims released to the app), for the code's minute only.

Taking a code and saving a token are each one Lua script: one round trip, and atomic, so no
ordering argument is needed between a concurrent exchange, a reuse and a revocation.

Each code is also listed under its person and app (GRANTS) for as long as a token it issues can
live, so that everything an app holds for one student can be revoked at once (revoke_grants: a
request to the app's vendor to delete what it received, portal.admin.deletions).
"""
from __future__ import annotations

import json
import secrets

import redis
from redis.commands.core import Script

from portal.sso.oidc.claims import hash_secret
from portal.sessions import ENDED

CODE = "portal:oidc:code:"
CODE_USED = "portal:oidc:code-used:"
CODE_TOKENS = "portal:oidc:code-tokens:"
TOKEN = "portal:oidc:token:"
NONCE = "portal:oidc:nonce:"
SIGN_IN = "portal:oidc:sign-in:"
TOKEN_READ = "portal:oidc:token-read:"
LOGOUT_POST = "portal:oidc:logout-post:"
HINT_POST = "portal:oidc:hint-post:"
# + client id + ":" + person id: the hashes of the codes issued to that app for that person.
GRANTS = "portal:oidc:grants:"

USED, REVOKED = b"used", b"revoked"

# KEYS: code, used mark; ARGV: seconds to remember the mark, the ended-session prefix. Returns
# {taken, record or nil, ended}: taken is 1 when this call left the mark (the code had not been
# presented before); ended is 1 when the portal session the code came from has ended since.
_TAKE_CODE = Script(None, b"""
local taken = redis.call('SET', KEYS[2], 'used', 'NX', 'EX', ARGV[1]) and 1 or 0
local raw = redis.call('GETDEL', KEYS[1])
local ended = 0
if raw then
  local ok, record = pcall(cjson.decode, raw)
  if ok and type(record) == 'table' and type(record['session_ref']) == 'string' then
    -- A session replaced by the same person signing in again names the one that goes on
    -- ("=" and its name): follow it (a few steps at most).
    local mark = redis.call('GET', ARGV[2] .. record['session_ref'])
    local steps = 0
    while mark and string.sub(mark, 1, 1) == '=' and steps < 5 do
      mark = redis.call('GET', ARGV[2] .. string.sub(mark, 2))
      steps = steps + 1
    end
    if mark then ended = 1 end
  end
end
return {taken, raw, ended}
""")

# KEYS: token, the code's token list, the code's used mark; ARGV: record, seconds, token hash.
# Returns 0 (and stores nothing) when the code was revoked.
_SAVE_TOKEN = Script(None, b"""
if redis.call('GET', KEYS[3]) == 'revoked' then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
""")


# KEYS: a person's GRANTS at one app; ARGV: the CODE, CODE_USED, CODE_TOKENS and TOKEN prefixes.
# For each code listed: the code goes (a later exchange finds nothing); one taken already is
# marked revoked (as revoke_code marks it: its token, if not saved yet, never is) and the tokens
# it issued go. Returns how many tokens went. One script: no exchange falls between its steps.
_REVOKE_GRANTS = Script(None, b"""
local gone = 0
for _, code in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('DEL', ARGV[1] .. code)
  if redis.call('EXISTS', ARGV[2] .. code) == 1 then
    redis.call('SET', ARGV[2] .. code, 'revoked', 'KEEPTTL')
  end
  for _, token in ipairs(redis.call('SMEMBERS', ARGV[3] .. code)) do
    gone = gone + redis.call('DEL', ARGV[4] .. token)
  end
end
redis.call('DEL', KEYS[1])
return gone
""")


class SessionEnded(Exception):
    """The code's portal session ended before the app exchanged it."""


def _grants(client_id: str, person_id) -> str:
    return f"{GRANTS}{client_id}:{person_id}"


def save_code(client: redis.Redis, code: str, record: dict, *, seconds: int, token_seconds: int = 0) -> None:
    """Keep an authorization code's record for `seconds` (at most a minute); and list it under
    its person and app for as long as a token it issues may live (`seconds` + `token_seconds`),
    for revoke_grants. One round trip."""
    code_hash = hash_secret(code)
    pipe = client.pipeline()
    pipe.set(CODE + code_hash, json.dumps(record), ex=seconds)
    if record.get("person_id") is not None and isinstance(record.get("client_id"), str):
        grants = _grants(record["client_id"], record["person_id"])
        pipe.sadd(grants, code_hash)
        pipe.expire(grants, seconds + token_seconds)
    pipe.execute()


def revoke_grants(client: redis.Redis, person_id: int, client_id: str) -> int:
    """Revoke every code and access token the app (`client_id`) was issued for the person: a code
    not exchanged yet cannot be, and a token reads no more userinfo. Return how many tokens went.
    (Codes issued before the portal listed them, in the version before this one, are not found:
    their tokens live out their time, OIDC_TOKEN_SECONDS at most.)"""
    return _REVOKE_GRANTS([_grants(client_id, person_id)], [CODE, CODE_USED, CODE_TOKENS, TOKEN],
                          client=client)


def take_code(client: redis.Redis, code: str, *, remember_seconds: int) -> tuple[dict | None, bool]:
    """Take a code once: return (record, False), or (None, reused) when it cannot be taken.

    On reuse, every access token issued from the code is revoked before returning.
    """
    code_hash = hash_secret(code)
    # Mark and take at once: of two concurrent exchanges, one gets the record and the other
    # finds the mark left by the first, so a race cannot hide a reuse.
    reply = _TAKE_CODE([CODE + code_hash, CODE_USED + code_hash], [remember_seconds, ENDED],
                       client=client)
    first, raw = reply[0] == 1, reply[1]
    if raw is not None:
        record = json.loads(raw)
        record["code_hash"] = code_hash
        if reply[2]:
            # "Not you? Sign out" before the app exchanged the code: on a shared device the
            # sign-in in flight must not survive it.
            raise SessionEnded()
        return record, False
    # Unknown, expired or already taken: revoke whatever the code issued (nothing, unless it
    # was taken before), so a replayed code never leaves its tokens alive.
    revoke_code(client, code_hash)
    return None, not first


def revoke_code(client: redis.Redis, code_hash: str) -> int:
    """Revoke every access token issued from a code; return how many there were."""
    # Mark first, then read the list: a token saved concurrently either is in the list or
    # sees the mark (save_token checks it after adding itself).
    client.set(CODE_USED + code_hash, REVOKED, keepttl=True)
    token_hashes = client.smembers(CODE_TOKENS + code_hash)
    if token_hashes:
        client.delete(*[TOKEN + h.decode() for h in token_hashes])
    return len(token_hashes)


def save_token(client: redis.Redis, access_token: str, record: dict, *, seconds: int,
               code_hash: str | None) -> bool:
    """Store an access token's record; False (and nothing stored) if its code was revoked."""
    token_hash = hash_secret(access_token)
    if code_hash is None:
        client.set(TOKEN + token_hash, json.dumps(record), ex=seconds)
        return True
    # Atomic: a revocation (revoke_code marks first, then reads the list) either comes before,
    # and nothing is stored, or after, and finds the token in the code's list.
    saved = _SAVE_TOKEN([TOKEN + token_hash, CODE_TOKENS + code_hash, CODE_USED + code_hash],
                        [json.dumps(record), seconds, token_hash], client=client)
    return saved == 1


def load_token(client: redis.Redis, access_token: str) -> dict | None:
    """Return an access token's record, or None when it is unknown, expired or revoked."""
    raw = client.get(TOKEN + hash_secret(access_token))
    return json.loads(raw) if raw is not None else None


def _read_key(token_hash: str, fields: list[str]) -> str:
    return TOKEN_READ + hash_secret(f"{token_hash}|{','.join(fields)}")


def first_read(client: redis.Redis, token_hash: str, fields: list[str], *, seconds: int) -> bool:
    """True the first time userinfo releases these fields under this token (kept as long as
    the token lives), False when it is a repeat."""
    return bool(client.set(_read_key(token_hash, fields), b"1", nx=True, ex=seconds))


def forget_read(client: redis.Redis, token_hash: str, fields: list[str]) -> None:
    """Undo first_read: the release it counted was not recorded (and so not made)."""
    client.delete(_read_key(token_hash, fields))


def nonce_seen(client: redis.Redis, client_id: str, nonce: str) -> bool:
    """True when a code was already issued with this nonce for this client."""
    return bool(client.exists(NONCE + hash_secret(f"{client_id}|{nonce}")))


def claim_nonce(client: redis.Redis, client_id: str, nonce: str, *, seconds: int) -> bool:
    """Remember a nonce a code is being issued with, to refuse the same authorization request
    again: False when it was already claimed (nonce_seen runs earlier, but two requests at the
    same moment can both pass it; only one of them claims)."""
    return bool(client.set(NONCE + hash_secret(f"{client_id}|{nonce}"), b"1", nx=True, ex=seconds))


def save_sign_in_marker(client: redis.Redis, marker: str, request_digest: str, *, created: int,
                        seconds: int) -> None:
    """Remember, for `seconds`, that /authorize sent a browser to sign in for this request."""
    client.set(SIGN_IN + hash_secret(f"{marker}|{request_digest}"), created, ex=seconds)


def take_sign_in_marker(client: redis.Redis, marker: str, request_digest: str) -> int | None:
    """Take a marker once: when it was made, or None if it is unknown, used, expired or was made
    for another request."""
    raw = client.getdel(SIGN_IN + hash_secret(f"{marker}|{request_digest}"))
    return int(raw) if raw is not None else None


def park(client: redis.Redis, prefix: str, data, *, seconds: int) -> str:
    """Keep `data` (JSON) for `seconds` under a new random name, and return the name (stored
    under its hash, as codes and tokens are)."""
    name = secrets.token_urlsafe(32)
    client.set(prefix + hash_secret(name), json.dumps(data), ex=seconds)
    return name


def read_parked(client: redis.Redis, prefix: str, name: str | None, *, once: bool = False):
    """What park kept under `name` (taken, if `once`; else as often as asked until it expires);
    None when the name is unknown, used or expired."""
    if not name or len(name) > 64:
        return None
    key = prefix + hash_secret(name)
    raw = client.getdel(key) if once else client.get(key)
    return json.loads(raw) if raw is not None else None
