"""`portal apps add-oidc` and `portal keys ...`: OpenID Connect set-up from the command line."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from portal.cli import apps_cli, fail


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
@with_appcontext
def apps_add_oidc(name, redirect_uris, login_uri, scopes, post_logout, target_link_uri, icon):
    """Add an app that signs in with OpenID Connect; prints its client id and secret once."""
    from portal.admin.services import AdminError
    from portal.db import db
    from portal.sso.oidc.clients import register_client

    try:
        app, secret = register_client(
            db.session, name, redirect_uris=list(redirect_uris), login_uri=login_uri,
            scopes=list(scopes) or None, post_logout_redirect_uris=list(post_logout),
            target_link_uri=target_link_uri, icon=icon)
    except AdminError as e:
        fail(str(e))
    click.echo(f"added {app.name} ({app.slug})")
    click.echo(f"client_id: {app.client_id}")
    click.echo(f"client_secret: {secret}")
    click.echo("keep the secret now: the portal stores only its hash and cannot show it again", err=True)


@click.group("keys")
def keys_cli():
    """The OpenID Connect signing keys."""


def _keys_dir():
    from portal.sso.oidc.keys import keys_dir
    return keys_dir(current_app.config["SETTINGS"])


@keys_cli.command("rotate")
@with_appcontext
def keys_rotate():
    """Make a new signing key; the previous one stays published until the next rotation."""
    from portal.sso.oidc.keys import rotate_keys
    try:
        ring, retired = rotate_keys(_keys_dir())
    except OSError as e:
        fail(f"cannot write the key folder {_keys_dir()}: {e.strerror}")
    click.echo(f"signing with {ring.kids[0]}")
    for kid in ring.kids[1:]:
        click.echo(f"still published: {kid}")
    for kid in retired:
        click.echo(f"retired: {kid}")


@keys_cli.command("list")
@with_appcontext
def keys_list():
    """List the published keys, newest (the one that signs) first."""
    from portal.sso.oidc.keys import load_keys
    try:
        ring = load_keys(_keys_dir())
    except OSError as e:
        fail(f"cannot read the key folder {_keys_dir()}: {e.strerror}")
    for i, kid in enumerate(ring.kids):
        click.echo(f"{kid}\t{'signing' if i == 0 else 'published'}")
