"""What goes into ID tokens and userinfo, and when a student must sign in again. Pure functions.

Claims are built only from `portal.access.released_claims` (which fields the district released);
the scopes an app asked for can only narrow that set, never widen it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from authlib.oidc.core.util import create_half_hash

# Released field (portal.access.FIELDS) -> OIDC claim name.
CLAIM_NAMES: dict[str, str] = {
    "subject": "sub",
    "given_name": "given_name",
    "family_name": "family_name",
    "family_name_initial": "family_name_initial",
    "display_name": "name",
    "email": "email",
    "username": "preferred_username",
    "grade": "grade",
    "school": "school",
    "school_id": "school_id",
    "sections": "sections",
    "role": "role",
    "student_number": "student_number",
}

# Which released fields each scope lets through. `roster` is ours: the school facts that no
# standard scope covers. `sub` always travels with `openid`, which every request must carry.
SCOPE_FIELDS: dict[str, frozenset[str]] = {
    "openid": frozenset({"subject"}),
    "profile": frozenset({"given_name", "family_name", "family_name_initial", "display_name",
                          "username"}),
    "email": frozenset({"email"}),
    "roster": frozenset({"grade", "school", "school_id", "sections", "role", "student_number"}),
}
SCOPES = tuple(SCOPE_FIELDS)

# How the student signed in (session["auth_method"]) -> `amr` values (RFC 8176).
# Apps must be able to tell how the student signed in. A password is "pwd". A QR badge is a
# printed card the student holds up: something they have, but copyable, so none of the registered
# values fits ("pwd" would say they knew a secret, "hwk"/"sc" that it was a key that cannot be
# copied). It is "badge", a value RFC 8176 section 2 allows by agreement and the README documents.
# A PIN typed after the badge adds "pin". A picture sequence chosen after it adds "picture", ours too:
# an app must be able to tell pictures from digits, and no registered value is a picture choice
# ("kba" is questions about one's past). Two factors together add "mfa". Unknown methods send no
# `amr` at all rather than a guess.
AMR: dict[str, tuple[str, ...]] = {
    "password": ("pwd",),
    "badge": ("badge",),
    "badge+pin": ("badge", "pin", "mfa"),
    "badge+picture": ("badge", "picture", "mfa"),
}


def scope_list(scope: str | None) -> list[str]:
    """Split a space-separated scope string, keeping order and dropping repeats."""
    seen: list[str] = []
    for item in (scope or "").split():
        if item not in seen:
            seen.append(item)
    return seen


def fields_for_scope(released: dict, scope: str | None) -> list[str]:
    """Return the released field names the scope lets through, in catalogue order."""
    allowed: set[str] = set()
    for item in scope_list(scope):
        allowed |= SCOPE_FIELDS.get(item, frozenset())
    return [name for name in CLAIM_NAMES if name in released and name in allowed]


def oidc_claims(released: dict, scope: str | None) -> dict:
    """Map released fields to OIDC claim names, keeping only what the scope asked for."""
    return {CLAIM_NAMES[name]: released[name] for name in fields_for_scope(released, scope)}


def amr_for(method: str | None) -> list[str] | None:
    """Return the RFC 8176 `amr` values for a sign-in method, or None when unknown."""
    values = AMR.get(method or "")
    return list(values) if values else None


def id_token_claims(*, issuer: str, client_id: str, user_claims: dict, now: int, lifetime: int,
                    auth_time: int | None, nonce: str | None = None, amr: list[str] | None = None,
                    access_token: str | None = None, alg: str = "RS256",
                    sid: str | None = None) -> dict:
    """Build the claims of an ID token for one client (user claims must hold `sub`)."""
    if "sub" not in user_claims:
        raise ValueError("an ID token needs a subject")
    claims = dict(user_claims)
    claims.update(iss=issuer, aud=client_id, iat=now, exp=now + lifetime)
    if auth_time is not None:
        claims["auth_time"] = int(auth_time)
    if nonce:
        claims["nonce"] = nonce
    if amr:
        claims["amr"] = list(amr)
    if access_token:
        claims["at_hash"] = create_half_hash(access_token, alg).decode("ascii")
    if sid:
        claims["sid"] = sid   # the app's name for this portal session (back-channel logout)
    return claims


@dataclass(frozen=True)
class SignInState:
    """What /authorize knows about the browser's current sign-in."""

    auth_time: int | None  # None: nobody is signed in
    subject: str | None = None  # the signed-in person's subject for this app
    # When /authorize sent this browser to sign in for this very request, if this request comes
    # back from there (its marker, taken once, is at most RESUME_SECONDS old).
    resumed_at: int | None = None


def must_sign_in(state: SignInState, *, now: int, prompt: str | None, max_age: int | None,
                 login_hint: str | None) -> bool:
    """True when the student has to sign in (again) before a code may be issued."""
    if state.auth_time is None:
        return True
    # A sign-in that happened after we asked for it satisfies prompt=login, max_age and hints.
    if state.resumed_at is not None and state.auth_time >= state.resumed_at:
        return False
    # select_account: the portal keeps no list of accounts to pick from; whoever is at the
    # keyboard says who they are by signing in (on a shared Chromebook, not always the last one).
    if {"login", "select_account"} & set(scope_list(prompt)):
        return True
    # max_age=0 is prompt=login (OpenID Connect Core 3.1.2.1), even within the same second.
    if max_age is not None and (max_age == 0 or now - state.auth_time > max_age):
        return True
    if login_hint and login_hint != state.subject:
        return True
    return False


def id_token_is_for_sign_in(claims: dict, *, subject: str, auth_time: int | None) -> bool:
    """True when an ID token names `subject` and was issued during the sign-in made at `auth_time`."""
    # Authlib accepts expired hints on purpose (RP-Initiated Logout 1.0, section 2); issued since
    # this sign-in bounds the age by the session's own, and a token from before it, or someone
    # else's, must not sign out whoever is at the computer now without asking.
    issued = claims.get("iat")
    return (auth_time is not None and claims.get("sub") == subject and isinstance(issued, int)
            and issued >= auth_time)


def parse_max_age(raw: str | None) -> int | None:
    """Return max_age as seconds; raise ValueError when it is not a whole number >= 0."""
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
        raise ValueError("max_age must be a whole number of seconds")
    return int(raw)


def hash_secret(secret: str) -> str:
    """Hash a high-entropy client secret or token for storage (SHA-256, hex)."""
    return hashlib.sha256(secret.encode()).hexdigest()
