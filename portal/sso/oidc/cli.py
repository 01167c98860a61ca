"""`portal apps add-oidc` and `portal keys ...`: OpenID Connect set-up from the command line."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from portal.cli import apps_cli, fail, shown


@apps_cli.command("add-oidc")
@click.argument("name")
@click.option("--redirect-uri", "redirect_uris", multiple=True, required=True,
              help="where the app receives codes (exact match; repeat for several)")
@click.option("--login-uri", required=True, help="the app's address that starts sign-in (tile launch)")
@click.option("--scope", "scopes", multiple=True,
              help="scopes the app may ask for: openid, profile, email, roster (default: all)")
@click.option("--post-logout-redirect-uri", "post_logout", multiple=True,
              help="where the app may send people after signing out (repeat for several)")
@click.option("--target-link-uri", help="where the app should land after a tile launch")
@click.option("--icon", default="", help="a square PNG, JPEG, GIF, WebP or SVG file (at most 64 KB)")
@click.option("--backchannel-logout-uri",
              help="where the app hears that a student's portal session ended (signed out, the "
                   "next child's scan, the bell): OpenID Connect Back-Channel Logout")
@with_appcontext
def apps_add_oidc(name, redirect_uris, login_uri, scopes, post_logout, target_link_uri, icon,
                  backchannel_logout_uri):
    """Add an app that signs in with OpenID Connect; prints its client id and secret once."""
    from portal.admin.services import AdminError
    from portal.db import db
    from portal.sso.oidc.clients import register_client

    try:
        app, secret = register_client(
            db.session, name, redirect_uris=list(redirect_uris), login_uri=login_uri,
            scopes=list(scopes) or None, post_logout_redirect_uris=list(post_logout),
            target_link_uri=target_link_uri, icon=icon, backchannel_logout_uri=backchannel_logout_uri)
    except AdminError as e:
        fail(str(e))
    click.echo(f"added {app.name} ({app.slug})")
    _echo_credentials(app, secret)


def _echo_credentials(app, secret: str) -> None:
    click.echo(f"client_id: {app.client_id}")
    click.echo(f"client_secret: {secret}")
    click.echo("keep the secret now: the portal stores only its hash and cannot show it again", err=True)


@apps_cli.command("new-secret")
@click.argument("name")
@with_appcontext
def apps_new_secret(name):
    """Give an OpenID Connect app a new client secret; prints it once. The old secret stops
    working at once: give the new one to the app's vendor."""
    from portal.admin.services import AdminError
    from portal.db import db
    from portal.sso.oidc.clients import new_client_secret

    try:
        app, secret = new_client_secret(db.session, name)
    except AdminError as e:
        fail(str(e))
    click.echo(f"new client secret for {shown(app.name)} ({app.slug}); the old one no longer works")
    _echo_credentials(app, secret)


@apps_cli.command("set-oidc")
@click.argument("name")
@click.option("--redirect-uri", "redirect_uris", multiple=True,
              help="where the app receives codes (exact match; repeat for several): replaces them all")
@click.option("--login-uri", help="the app's address that starts sign-in (tile launch)")
@with_appcontext
def apps_set_oidc(name, redirect_uris, login_uri):
    """Change an OpenID Connect app's redirect URIs (those given replace them all) or its login
    URI; prints what it now has."""
    from portal.admin.services import AdminError
    from portal.db import db
    from portal.sso.oidc.clients import set_client_addresses

    try:
        app = set_client_addresses(db.session, name, redirect_uris=list(redirect_uris),
                                   login_uri=login_uri)
    except AdminError as e:
        fail(str(e))
    click.echo(f"{shown(app.name)} ({app.slug}) now has:")
    click.echo(f"redirect URIs: {', '.join(app.settings['redirect_uris'])}")
    click.echo(f"login URI: {app.settings['login_uri']}")
    click.echo(f"a tile launch lands at: {app.url}")


@click.group("keys")
def keys_cli():
    """The OpenID Connect signing keys."""


def _keys_dir():
    from portal.sso.oidc.keys import keys_dir
    return keys_dir(current_app.config["SETTINGS"])


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@apps_cli.command("logout-uri")
@click.argument("name")
@click.argument("uri", required=False)
@click.option("--slo-binding", type=click.Choice(["redirect", "post"]), default=None,
              help="a SAML app's: how the address takes sign-outs, HTTP-Redirect or HTTP-POST "
                   "(default: as the app's address took them before; HTTP-Redirect for a first one)")
@with_appcontext
def apps_logout_uri(name, uri, slo_binding):
    """Set (or, without URI, remove) where an app hears that a student's portal session ended:
    an OIDC app's back-channel logout URI, or a SAML app's Single Logout address."""
    from portal.admin.services import AdminError, find_app
    from portal.db import db
    from portal.models import AppKind
    from portal.sso.oidc.clients import set_backchannel_logout_uri
    from portal.sso.saml.registry import set_slo_url
    from portal.sso.saml.sp import binding_words

    try:
        saml = find_app(db.session, name).kind is AppKind.saml
        if saml:
            app = set_slo_url(db.session, name, uri, slo_binding or "")
        elif slo_binding:
            fail("--slo-binding is for SAML apps: an OpenID app hears by back-channel logout")
        else:
            app = set_backchannel_logout_uri(db.session, name, uri)
    except AdminError as e:
        fail(str(e))
    when = "when a student signs out here" if saml else "when a student's portal session ends"
    if uri and saml:
        click.echo(f"{shown(app.name)} hears at {uri} by {binding_words(app.settings.get('slo_binding'))} {when}")
    elif uri:
        click.echo(f"{shown(app.name)} hears at {uri} {when}")
    else:
        click.echo(f"{shown(app.name)} no longer hears {when}")


@keys_cli.command("rotate")
@click.option("--now", is_flag=True,
              help="sign with the new key at once (a leaked key); apps that cached the published "
                   "keys may refuse new sign-ins for up to 5 minutes")
@click.option("--retire", is_flag=True,
              help="with --now: stop publishing the old keys at once, so that nothing they signed "
                   "(or a thief signs with them) verifies any more")
@with_appcontext
def keys_rotate(now, retire):
    """Publish a new signing key, which signs 10 minutes later (after apps have fetched it); the
    key signing now stays published until the rotation after next, and an older key as long as
    what it signed may still be presented, PORTAL_SESSION_MAX_HOURS after it stopped signing
    (--now --retire: withdrawn)."""
    from portal.sso.oidc.keys import KeyFileError, presentable_for, rotate_keys
    if retire and not now:
        fail("--retire needs --now: the old key must not be withdrawn before the new one signs")
    try:
        ring, retired = rotate_keys(_keys_dir(), at_once=now, retire=retire,
                                    keep_for=presentable_for(current_app.config["SETTINGS"]))
    except OSError as e:
        fail(f"cannot write the key folder {_keys_dir()}: {e.strerror}")
    except KeyFileError as e:
        fail(str(e))
    signing = ring.signing_key()
    for key in ring.waiting():
        click.echo(f"published: {key.kid} (signs from {_when(key.signs_from)})")
    click.echo(f"signing with {signing.kid}")
    for kid in ring.kids[ring.kids.index(signing.kid) + 1:]:
        click.echo(f"still published: {kid}" + (" (a leaked key? `portal keys rotate --now --retire` "
                                                 "withdraws it)" if now else ""))
    for kid in retired:
        click.echo(f"retired: {kid}")


@keys_cli.command("list")
@with_appcontext
def keys_list():
    """List the published keys, the one that signs last first."""
    from portal.sso.oidc.keys import KeyFileError, load_keys
    try:
        ring = load_keys(_keys_dir(), strict=True)
    except OSError as e:
        fail(f"cannot read the key folder {_keys_dir()}: {e.strerror}")
    except KeyFileError as e:
        fail(str(e))
    signing = ring.signing_key()
    waiting = {k.kid for k in ring.waiting()}
    for key in ring.keys:
        state = ("signing" if key.kid == signing.kid
                 else f"signs from {_when(key.signs_from)}" if key.kid in waiting else "published")
        click.echo(f"{key.kid}\t{state}")
