"""Authlib's authorization server, configured and tightened for the portal.

Storage is by overridden methods: clients are Apps (portal.sso.oidc.clients), codes, tokens and
nonces live in Redis (portal.sso.oidc.store). Tightenings over Authlib's defaults:
- PKCE on every request, S256 only (Authlib makes it optional and accepts "plain");
- client_secret_basic or client_secret_post only (no public clients, no "none");
- scope must hold openid; codes live at most a minute, are taken once, and a second exchange
  revokes the tokens the first one issued; no refresh tokens.

What the ID token says is decided at /authorize (access.released_claims, narrowed to the scope)
and kept in the code's record. The exchange checks again that the person may still launch the
app, and decides again if the app's released fields changed in between; the person's data is the
data of the launch, at most a code's lifetime old. Userinfo reads the roster afresh every time:
a token lives longer than a code, and releasing less must reach tokens already issued.
"""
from __future__ import annotations

import hmac
import logging
import re
import secrets
import time
from contextlib import suppress
from dataclasses import dataclass

import redis
from authlib.common.urls import add_params_to_uri
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import (
    InvalidGrantError, InvalidRequestError, InvalidScopeError, OAuth2Request, TokenMixin,
    UnsupportedResponseTypeError,
)
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge, create_s256_code_challenge
from authlib.oidc.core import AuthorizationCodeMixin
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.rpinitiated import EndSessionEndpoint
from flask import current_app, request
from sqlalchemy import bindparam, select

from portal import access, audit
from portal.admin.services import RESTORED_AT
from portal.db import db
from portal.models import Person
from portal.sso.oidc import backchannel, store
from portal.sso.oidc.claims import (
    fields_for_scope, hash_secret, id_token_claims, id_token_is_for_sign_in, oidc_claims, scope_list,
)
from portal.sso.oidc.clients import AUTH_METHODS, Client, find_client
from portal.sso.oidc.keys import ALG, KeyFileError, KeyRing, keys_dir, load_keys

log = logging.getLogger(__name__)

# Built once: Session.get builds its statement anew on every call, which doubled the cost of
# loading the person on the token and userinfo endpoints.
_PERSON = select(Person).where(Person.id == bindparam("person_id"))


def _person(person_id: int) -> Person | None:
    return db.session.scalar(_PERSON, {"person_id": person_id})


def _settings():
    return current_app.config["SETTINGS"]


def _redis():
    return current_app.extensions["redis"]


def current_issuer() -> str:
    """The issuer: PORTAL_OIDC_ISSUER, or the address this request came to."""
    return _settings().oidc_issuer or request.url_root.rstrip("/")


def key_ring() -> KeyRing:
    """The signing keys. A production worker never makes the first one (KeyFileError says what
    to run): on servers that do not share the folder, each would sign with its own."""
    return load_keys(keys_dir(_settings()), create=not _settings().production)


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):
    """A code's record, as taken from Redis."""

    code_hash: str
    client_id: str
    redirect_uri: str
    scope: str
    person_id: int
    code_challenge: str
    code_challenge_method: str
    nonce: str | None = None
    auth_time: int | None = None
    amr: list | None = None
    # Decided at /authorize by access.released_claims, narrowed to the scope: the ID token's
    # user claims. `released_fields` is the app's release setting then, to see if it changed.
    released: dict | None = None
    released_fields: list | None = None
    # The portal session the code was issued in (portal.sessions.session_ref), for logout.
    session_ref: str | None = None

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time

    def get_amr(self):
        return self.amr


@dataclass(frozen=True)
class SignIn:
    """How and when the person being issued a code signed in (from their session)."""

    auth_time: int | None
    amr: list | None
    session_ref: str | None = None


def _s256_matches(verifier: str, challenge: str) -> bool:
    return hmac.compare_digest(create_s256_code_challenge(verifier), challenge or "")


class S256CodeChallenge(CodeChallenge):
    """PKCE, required for every client, S256 only."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": _s256_matches}

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge and code_challenge_method=S256.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is accepted.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):
        code = grant.request.authorization_code
        if not code.code_challenge or code.code_challenge_method != "S256":
            raise InvalidGrantError("This code was issued without PKCE.")
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)


class CodeGrant(AuthorizationCodeGrant):
    """The authorization code grant, with codes in Redis."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)
    #: set by the authorize view before it asks for a code
    sign_in: SignIn | None = None

    @staticmethod
    def validate_authorization_redirect_uri(request, client):
        # Authlib's own message quotes the URI, and a quote in it makes Authlib raise ValueError.
        uri = request.payload.redirect_uri
        if not uri:
            raise InvalidRequestError("Missing 'redirect_uri' in request.")
        if not client.check_redirect_uri(uri):
            raise InvalidRequestError("The redirect_uri is not registered for this client.")
        return uri

    def save_authorization_code(self, code, request):
        settings = _settings()
        data = request.payload.data
        sign_in = self.sign_in or SignIn(None, None)
        app = request.client.app
        # The release is decided now, with the student here: the exchange then needs no claims
        # from the database, only to see that the grant and the release setting still hold.
        released = access.released_claims(db.session, request.user, app, pairwise_key=settings.pairwise_key)
        record = {
            "client_id": request.client.get_client_id(),
            "redirect_uri": request.payload.redirect_uri,
            "scope": request.scope,
            "person_id": request.user.id,
            "code_challenge": data.get("code_challenge"),
            "code_challenge_method": data.get("code_challenge_method"),
            "nonce": data.get("nonce"),
            "auth_time": sign_in.auth_time,
            "amr": sign_in.amr,
            "released": {name: released[name] for name in fields_for_scope(released, request.scope)},
            "released_fields": list(app.released_fields or ()),
            "session_ref": sign_in.session_ref,
        }
        if data.get("nonce") and not store.claim_nonce(_redis(), record["client_id"], data["nonce"],
                                                       seconds=settings.oidc_token_seconds):
            raise InvalidRequestError("Replay attack")   # Authlib's words for the same case
        store.save_code(_redis(), code, record, seconds=settings.oidc_code_seconds,
                        token_seconds=settings.oidc_token_seconds)

    def query_authorization_code(self, code, client):
        if not code or len(code) > 512:
            return None
        settings = _settings()
        try:
            record, reused = store.take_code(
                _redis(), code, remember_seconds=settings.oidc_token_seconds + settings.oidc_code_seconds)
        except store.SessionEnded:
            raise InvalidGrantError("The student signed out before this sign-in finished.") from None
        if reused:
            log.warning("an authorization code was presented again; its tokens are revoked (client %s)",
                        client.get_client_id())
        if record is None or record["client_id"] != client.get_client_id():
            return None
        return AuthorizationCode(**record)

    def delete_authorization_code(self, authorization_code):
        # Nothing to do: query_authorization_code took the code out of Redis already.
        pass

    def authenticate_user(self, authorization_code):
        person = _person(authorization_code.person_id)
        client: Client = self.request.client
        # The grant or the person may have gone since the code was issued.
        if person is None or not access.may_launch(db.session, person, client.app):
            return None
        return person


class PortalOpenIDCode(OpenIDCode):
    """OpenID Connect on the code grant: ID tokens built from released claims only."""

    def exists_nonce(self, nonce, request):
        return store.nonce_seen(_redis(), request.payload.client_id, nonce)

    def process_token(self, grant, response):
        _, token, _ = response
        request = grant.request
        client: Client = request.client
        code: AuthorizationCode = request.authorization_code
        settings = _settings()
        released = code.released
        if released is None or code.released_fields != list(client.app.released_fields or ()):
            # The district changed what the app receives since /authorize: decide again, so
            # releasing less takes effect at once, as it does for userinfo.
            released = access.released_claims(db.session, request.user, client.app,
                                              pairwise_key=settings.pairwise_key)
        issuer, sid = current_issuer(), None
        if code.session_ref and client.settings.get("backchannel_logout_uri"):
            # The app will hear when the student's portal session ends.
            sid = backchannel.logout_sid(settings.pairwise_key, client.get_client_id(), code.session_ref)
            if not backchannel.tie(_redis(), code.session_ref, client_id=client.get_client_id(),
                                   issuer=issuer, subject=released["subject"], sid=sid,
                                   seconds=settings.session_max_hours * 3600):
                # It would never hear of an end that has already happened.
                raise InvalidGrantError("The student signed out before this sign-in finished.")
        claims = id_token_claims(
            issuer=issuer, client_id=client.get_client_id(),
            user_claims=oidc_claims(released, token["scope"]), now=int(time.time()),
            lifetime=settings.oidc_token_seconds, auth_time=code.auth_time, nonce=code.nonce,
            amr=code.amr, access_token=token["access_token"], alg=ALG, sid=sid,
        )
        token["id_token"] = key_ring().sign(claims)
        data = {"protocol": "oidc", "fields": fields_for_scope(released, token["scope"])}
        if ids := access.released_ids(settings.pairwise_key, released, data["fields"]):
            data["ids"] = ids
        audit.record("launch", person=request.user, app=client.app, data=data)
        return token


class PortalAuthorizationServer(AuthorizationServer):
    """The portal's authorization server: clients from the database, state in Redis."""

    def init_app(self, app, query_client=None, save_token=None):
        super().init_app(app)
        self.register_token_generator("default", generate_bearer_token)

    def create_oauth2_request(self, request):
        # One the portal built itself (request_with): Authlib's Flask integration would read
        # the Flask request whatever it is given.
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def query_client(self, client_id):
        return find_client(db.session, client_id)

    def save_token(self, token, request):
        code = request.authorization_code
        record = {"person_id": request.user.id, "client_id": request.client.get_client_id(),
                  "scope": token["scope"], "issued": time.time()}
        saved = store.save_token(_redis(), token["access_token"], record,
                                 seconds=_settings().oidc_token_seconds,
                                 code_hash=code.code_hash if code else None)
        if not saved:
            raise InvalidGrantError("This code was presented twice: its tokens are revoked.")

    def get_authorization_grant(self, request):
        if request.payload.response_type == "code":
            return super().get_authorization_grant(request)
        # Only the code flow. Answer at the redirect URI only when it is registered to the client.
        client = self.query_client(request.payload.client_id)
        uri = request.payload.redirect_uri
        verified = uri if client is not None and uri and client.check_redirect_uri(uri) else None
        shown = re.sub(r"[^A-Za-z0-9_ ]", "", request.payload.response_type or "")[:40]
        raise UnsupportedResponseTypeError(shown, redirect_uri=verified, state=request.payload.state)

    def validate_requested_scope(self, scope):
        if "openid" not in scope_list(scope):
            raise InvalidScopeError("The scope must include openid.")


def request_with(parameters: dict) -> OAuth2Request:
    """This HTTP request as Authlib sees it, with `parameters` in place of its own (a request an
    app sent by POST, kept until the browser came back by GET)."""
    built = OAuth2Request(request.method, request.url, headers=request.headers)
    built.payload = BasicOAuth2Payload(parameters)
    return built


def generate_bearer_token(grant_type, client, user=None, scope=None, expires_in=None,
                          include_refresh_token=True):
    """An opaque random access token (stored only hashed); never a refresh token."""
    return {"token_type": "Bearer", "access_token": secrets.token_urlsafe(32),
            "expires_in": _settings().oidc_token_seconds, "scope": scope}


@dataclass
class AccessToken(TokenMixin):
    """An access token's record, as found in Redis (expired or revoked ones are not found)."""

    person_id: int
    client_id: str
    scope: str
    token_hash: str = ""
    issued: float = 0.0      # when (Unix time); 0 in a token saved before tokens said so

    def get_scope(self):
        return self.scope

    def check_client(self, client):
        return client.get_client_id() == self.client_id

    def get_expires_in(self):
        return _settings().oidc_token_seconds

    def is_expired(self):
        return False  # Redis dropped it when it expired

    def is_revoked(self):
        return False  # revoking deletes it

    def get_user(self):
        return _person(self.person_id)

    def get_client(self):
        client = find_client(db.session, self.client_id)
        # A token issued before its app was removed stays dead when the app is restored (portal
        # apps restore: the district may have removed it for a breach at the vendor's).
        if client is not None and self.issued < client.settings.get(RESTORED_AT, 0):
            return None
        return client


class RedisBearerTokenValidator(BearerTokenValidator):
    def authenticate_token(self, token_string):
        if not token_string or len(token_string) > 512:
            return None
        record = store.load_token(_redis(), token_string)
        return AccessToken(**record, token_hash=hash_secret(token_string)) if record else None


FORM = "application/x-www-form-urlencoded"


def body_access_tokens() -> list[str]:
    """The access_token values in the body of this request if it is a form-encoded POST (RFC 6750
    2.2); none for any other request (a GET's body, JSON, the query string are not read)."""
    if request.method != "POST" or request.mimetype != FORM:
        return []
    return request.form.getlist("access_token")


class PortalResourceProtector(ResourceProtector):
    """Authlib's, which reads the token from the Authorization header only, reading too the one
    in a form-encoded POST's body when the request has no Authorization header (pyoidc's
    userinfo request sends it so). The view has refused a request with more than one."""

    def parse_request_authorization(self, request):
        tokens = body_access_tokens()
        if tokens and "Authorization" not in request.headers:
            return self.get_token_validator("bearer"), tokens[0]
        return super().parse_request_authorization(request)


def release_userinfo(token: AccessToken) -> dict | None:
    """The userinfo claims for a token now, recorded as a release (the app receives them as a
    launch's ID token does); None, and nothing recorded, if the person or the grant has gone.

    One record per token and set of fields: an app that reads userinfo on every page it shows
    repeats the same release, and a record of each would bury the launches. A change in what is
    released (the district released less, or more, or the roster changed an identifying value
    such as the email) is a new record.
    """
    person, client = token.get_user(), token.get_client()
    if person is None or client is None or not access.may_launch(db.session, person, client.app):
        return None
    key = _settings().pairwise_key
    released = access.released_claims(db.session, person, client.app, pairwise_key=key)
    data = {"protocol": "oidc", "fields": fields_for_scope(released, token.scope)}
    if ids := access.released_ids(key, released, data["fields"]):
        data["ids"] = ids
    seen = [*data["fields"], *(f"{name}={digest}" for name, digest in ids.items())]
    redis_client = _redis()
    if store.first_read(redis_client, token.token_hash, seen, seconds=_settings().oidc_token_seconds):
        try:
            audit.record("userinfo", person=person, app=client.app, data=data)
        except BaseException:
            # Not recorded, so not released (this request fails): the next read must record it,
            # not pass for a repeat of this one.
            with suppress(redis.RedisError):
                store.forget_read(redis_client, token.token_hash, seen)
            raise
    return oidc_claims(released, token.scope)


class PortalEndSession(EndSessionEndpoint):
    """RP-initiated logout: the id_token_hint must be ours; redirect only to registered URIs.

    Whether to sign out without asking (the hint is the signed-in student's) is hint_is_for.
    """

    def get_server_jwks(self):
        return key_ring().public_jwks()

    def get_algorithms(self):
        return [ALG]

    def _validate_id_token_hint(self, id_token_hint):
        try:
            return super()._validate_id_token_hint(id_token_hint)
        except (InvalidRequestError, KeyFileError):
            raise
        except Exception:  # noqa: BLE001  hostile input in a third-party decoder: a crit header
            # that is not a list of names is a TypeError in joserfc, not a JoseError.
            raise InvalidRequestError("The id_token_hint is not a token of this portal.") from None

    def validate_request(self, request):
        result = super().validate_request(request)
        if result.id_token_claims is not None and result.id_token_claims.get("iss") != current_issuer():
            raise InvalidRequestError("The id_token_hint was not issued by this portal.")
        return result

    def end_session(self, end_session_request):
        from portal.auth.services import sign_out
        sign_out()


def hint_is_for(end_session_request, person: Person, auth_time: int | None) -> bool:
    """True when a logout's id_token_hint was issued to `person` during their current sign-in."""
    claims, client = end_session_request.id_token_claims, end_session_request.client
    if claims is None or client is None:
        return False
    subject = access.pairwise_subject(_settings().pairwise_key, person, client.app)
    return id_token_is_for_sign_in(claims, subject=subject, auth_time=auth_time)


def return_after_asking(end_session_request) -> str | None:
    """Where the browser goes once the student has said yes to a logout the portal asked about:
    the post-logout address Authlib checked against the ID token's app, or, with no ID token,
    the one the request names if the app it names (client_id) registered it. The student's own
    "Sign out" is then what confirms the request (RP-Initiated Logout 1.0, section 3: "other
    means of confirming"). With the app's state; None: nowhere but the portal's own page."""
    if end_session_request.redirect_uri or end_session_request.id_token_claims is not None:
        return end_session_request.redirect_uri
    data, client = end_session_request.request.payload.data, end_session_request.client
    uri, state = data.get("post_logout_redirect_uri"), data.get("state")
    if not uri or client is None or uri not in client.client_metadata["post_logout_redirect_uris"]:
        return None
    return add_params_to_uri(uri, {"state": state}) if state else uri


server = PortalAuthorizationServer()
server.register_grant(CodeGrant, [S256CodeChallenge(required=True), PortalOpenIDCode(require_nonce=False)])
server.register_endpoint(PortalEndSession)

require_oauth = PortalResourceProtector()
require_oauth.register_token_validator(RedisBearerTokenValidator())
