"""A small learning app that signs students in through the portal, by SAML and by OpenID Connect,
and shows exactly what it received. It talks to the portal only over HTTP, as any app would.

Routes: /saml/acs, /saml/slo and /saml/metadata (the SAML service provider), /oidc/login (third-party-initiated
login, where a tile launch lands) and /oidc/callback (the OIDC client), /oidc/backchannel-logout
(where the portal says a student's portal session ended: OpenID Connect Back-Channel Logout, so
the next child at a shared Chromebook does not find this one signed in), / (what arrived).
"""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import asdict
from datetime import datetime, timezone
from urllib.parse import urlsplit

from authlib.integrations.flask_client import OAuth, OAuthError
from flask import Flask, Response, jsonify, redirect, render_template, request, session, url_for
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from requests import RequestException

from examples.demo_app.saml_sp import SamlRefused, ServiceProvider

SCOPE = "openid profile email roster"
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
SAML_PROTOCOL = "SAML 2.0"
OIDC_PROTOCOL = "OpenID Connect"


def create_app(*, portal_url: str, base_url: str, client_id: str, client_secret: str,
               secret_key: str | None = None) -> Flask:
    """Build the demo app for one portal, published at `base_url` (no trailing slash)."""
    portal_url, base_url = portal_url.rstrip("/"), base_url.rstrip("/")
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key or secrets.token_urlsafe(32),
        # The portal's cookie lives on the same host (ports do not separate cookies): another name.
        SESSION_COOKIE_NAME="demo_app_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PORTAL_URL=portal_url,
        BASE_URL=base_url,
    )
    app.json.sort_keys = False  # show claims in the order they came (the session keeps it too)
    app.add_template_filter(_utc, "utc")
    sp = ServiceProvider(base_url, portal_url)
    oauth = OAuth(app)
    portal = oauth.register(
        "portal", client_id=client_id, client_secret=client_secret,
        server_metadata_url=f"{portal_url}/.well-known/openid-configuration",
        client_kwargs={"scope": SCOPE, "code_challenge_method": "S256", "timeout": 5},
    )

    # The portal sessions the portal said have ended: (issuer, sid). A real app would end its
    # stored sessions; this one keeps its session in a cookie, so it forgets it at the next request.
    ended: set[tuple[str, str]] = set()
    ended_lock = threading.Lock()

    @app.before_request
    def forget_an_ended_sign_in():
        token = (session.get("received") or {}).get("id_token") or {}
        if token.get("sid"):
            with ended_lock:
                gone = (token.get("iss"), token["sid"]) in ended
            if gone:
                session.clear()

    def problem(title: str, detail: str, status: int = 400):
        return render_template("demo_app/problem.html", title=title, detail=detail,
                               portal_url=portal_url), status

    @app.get("/")
    def home():
        return render_template("demo_app/home.html", received=session.get("received"),
                               portal_url=portal_url, base_url=base_url)

    @app.post("/signout")
    def signout():
        session.clear()
        return redirect(url_for("home"), code=303)

    @app.get("/saml/metadata")
    def saml_metadata():
        return Response(sp.metadata(), mimetype="application/samlmetadata+xml")

    @app.post("/saml/acs")
    def saml_acs():
        try:
            got = sp.consume(request.form)
        except SamlRefused as e:
            return problem("The SAML sign-in was refused", str(e), 403)
        session.clear()
        session["received"] = {"protocol": SAML_PROTOCOL, "how": "tile launch (IdP-initiated)",
                               "app": sp.entity_id, "saml": asdict(got)}
        return redirect(url_for("home"), code=303)

    @app.get("/saml/slo")
    def saml_slo():
        # SAML Single Logout: the student signed out of the portal, which sends the browser here
        # on its way round the SAML apps; we end our session and send it back with our answer.
        try:
            back = sp.logout(request.args.to_dict(), session.clear)
        except SamlRefused as e:
            return problem("The SAML sign-out was refused", str(e), 400)
        return redirect(back, code=302)

    @app.route("/oidc/login", methods=["GET", "POST"])
    def oidc_login():
        # OpenID Connect Core 4: the portal names itself (iss) and the student (login_hint);
        # we start our own code flow, so nothing from this request is trusted beyond a hint.
        try:
            issuer = portal.load_server_metadata()["issuer"]
        except (RequestException, KeyError, ValueError) as e:
            return problem("The portal did not answer", f"{portal_url}: {type(e).__name__}", 502)
        iss = request.values.get("iss")
        if iss and iss != issuer:
            return problem("This launch came from another portal",
                           f"It names {iss}; this app trusts {issuer}. Open the portal at {portal_url}.")
        target = request.values.get("target_link_uri", "")
        session["after_sign_in"] = target if _is_ours(target, base_url) else "/"
        hint = request.values.get("login_hint")
        return portal.authorize_redirect(f"{base_url}/oidc/callback", **({"login_hint": hint} if hint else {}))

    @app.post("/oidc/backchannel-logout")
    def oidc_backchannel_logout():
        # Back-Channel Logout 1.0, 2.6: a logout token is checked as an ID token is, and more.
        raw = request.form.get("logout_token", "")
        try:
            metadata = portal.load_server_metadata()
            try:
                token = jwt.decode(raw, KeySet.import_key_set(portal.fetch_jwk_set()), algorithms=["RS256"])
            except InvalidKeyIdError:   # the portal rotated its key since we fetched them: once more
                token = jwt.decode(raw, KeySet.import_key_set(portal.fetch_jwk_set(force=True)),
                                   algorithms=["RS256"])
            claims, now = token.claims, time.time()
            audience = claims.get("aud")
            iat, exp = claims.get("iat"), claims.get("exp")
            good = (token.header.get("typ") == "logout+jwt"
                    and claims.get("iss") == metadata["issuer"]
                    and client_id in (audience if isinstance(audience, list) else [audience])
                    and isinstance(claims.get("events"), dict) and LOGOUT_EVENT in claims["events"]
                    and isinstance(claims.get("sid"), str) and "nonce" not in claims
                    and isinstance(iat, (int, float)) and iat <= now + 60
                    and isinstance(exp, (int, float)) and exp > now)
        except (JoseError, RequestException, KeyError, ValueError, TypeError):
            good = False
        if not good:
            answer = jsonify(error="invalid_request", error_description="not a valid logout token")
            answer.status_code = 400
        else:
            with ended_lock:
                ended.add((claims["iss"], claims["sid"]))
            answer = Response(status=200)
        answer.headers["Cache-Control"] = "no-store"
        return answer

    @app.get("/oidc/callback")
    def oidc_callback():
        try:
            metadata = portal.load_server_metadata()
            # RFC 9207: a provider that says it names itself must have; an answer naming another
            # (an app that trusts several could be sent one's code for the other) is refused.
            if (metadata.get("authorization_response_iss_parameter_supported")
                    and request.args.get("iss") != metadata["issuer"]):
                return problem("This answer came from another portal",
                               f"It names {request.args.get('iss')}; this app trusts {metadata['issuer']}.",
                               403)
            token = portal.authorize_access_token()
            if "userinfo" not in token:
                raise OAuthError(description="the portal sent no ID token")
            userinfo = portal.userinfo(token=token)
        except OAuthError as e:
            return problem("The OpenID Connect sign-in was refused", f"{e.error}: {e.description}", 403)
        except (RequestException, ValueError) as e:
            return problem("The OpenID Connect sign-in failed", f"{type(e).__name__}: {e}", 502)
        after = session.pop("after_sign_in", "/")
        session.clear()
        session["received"] = {"protocol": OIDC_PROTOCOL,
                               "how": "tile launch (third-party-initiated login, code flow with PKCE)",
                               "app": client_id, "scope": token.get("scope", ""),
                               "id_token": dict(token["userinfo"]), "userinfo": dict(userinfo)}
        return redirect(after if _is_ours(after, base_url) else "/", code=303)

    return app


def _utc(seconds) -> str:
    try:
        return datetime.fromtimestamp(int(seconds), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError):
        return ""


def _is_ours(url: str, base_url: str) -> bool:
    if url.startswith("/"):
        return url[1:2] not in ("/", "\\")  # "//host" and "/\host" leave the site
    parts, base = urlsplit(url), urlsplit(base_url)
    return (parts.scheme, parts.netloc) == (base.scheme, base.netloc)
