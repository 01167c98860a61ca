"""`portal apps add-saml`: register a SAML app from the command line."""
from __future__ import annotations

import os

import click
from flask.cli import with_appcontext

from portal.cli import _admin_call, apps_cli, fail, shown
from portal.sso.saml.sp import NAMEID_SOURCES, binding_words


# One app's metadata or certificate is a few kilobytes: a file past this is another thing (a
# federation's whole list, a device), and reading on would fill the memory.
MAX_FILE_BYTES = 1024 * 1024


def _read(path: str, what: str) -> bytes:
    if os.path.exists(path) and not os.path.isfile(path):
        fail(f"the {what} {path!r} is not a file (a device or a pipe)")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        fail(f"can't read the {what} {path!r}: {e.strerror or e}")
    if len(data) > MAX_FILE_BYTES:
        fail(f"the {what} {path!r} is over {MAX_FILE_BYTES // 1024} KB: give the app's own, "
             f"not a federation's list")
    return data


@apps_cli.command("add-saml")
@click.argument("name")
@click.option("--entity-id", help="the app's SAML entity ID (from its metadata if not given)")
@click.option("--acs-url", "acs_urls", multiple=True,
              help="where responses are posted (HTTP-POST); repeat for more; the first is the default")
@click.option("--metadata", "metadata_file", type=click.Path(dir_okay=False),
              help="the app's SAML metadata XML file")
@click.option("--nameid", type=click.Choice(list(NAMEID_SOURCES)), default="subject", show_default=True,
              help="which released field is the NameID (subject is the per-app pairwise id)")
@click.option("--attribute", "attributes", multiple=True, metavar="FIELD=NAME",
              help="send FIELD under attribute NAME (default: the field's own name); repeat")
@click.option("--relay-state", default="", help="where the app should land after a tile launch")
@click.option("--require-signed-requests", is_flag=True, help="refuse unsigned AuthnRequests")
@click.option("--sp-cert", "sp_cert_file", type=click.Path(dir_okay=False),
              help="the app's signing certificate (PEM) to verify its requests")
@click.option("--icon", default="", help="a square PNG, JPEG, GIF, WebP or SVG file (at most 64 KB)")
@click.option("--slo-url", default="",
              help="the app's Single Logout address: it hears when a student signs out here, and "
                   "may sign the student out here (from the metadata if not given)")
@click.option("--slo-binding", type=click.Choice(["redirect", "post"]), default=None,
              help="how the --slo-url address takes sign-outs: HTTP-Redirect (the default) or "
                   "HTTP-POST (Spring Security's default)")
@click.option("--ignore-requested-context", is_flag=True,
              help="answer the app's sign-in requests whatever authentication context they ask "
                   "for, saying how the student signed in: for an app whose SAML library asks for "
                   "a password sign-in by default (python3-saml, php-saml, java-saml), which a "
                   "badge sign-in never meets")
@with_appcontext
def apps_add_saml(name, entity_id, acs_urls, metadata_file, nameid, attributes, relay_state,
                  require_signed_requests, sp_cert_file, icon, slo_url, slo_binding,
                  ignore_requested_context):
    """Add an app that signs students in over SAML 2.0."""
    from portal.db import db
    from portal.sso.saml.registry import parse_attribute_map, register_sp

    metadata = _read(metadata_file, "metadata file") if metadata_file else None
    sp_cert = _read(sp_cert_file, "certificate file") if sp_cert_file else None
    mapping = _admin_call(parse_attribute_map, attributes)
    app = _admin_call(register_sp, db.session, name, entity_id=entity_id, acs_urls=acs_urls,
                      metadata=metadata, nameid=nameid, attributes=mapping, relay_state=relay_state,
                      require_signed_requests=require_signed_requests, sp_cert=sp_cert, icon=icon,
                      slo_url=slo_url, slo_binding=slo_binding or "",
                      ignore_requested_context=ignore_requested_context)
    settings = app.settings
    click.echo(f"added {app.name} ({app.slug}): entity ID {app.client_id}")
    click.echo(f"ACS URLs: {', '.join(settings['acs_urls'])}")
    if settings["require_signed_requests"]:
        signing = "required"
    elif settings["sp_cert"]:
        signing = "checked when signed"
    else:
        signing = "not checked (no certificate)"
    click.echo(f"NameID: {settings['nameid']}; signed requests: {signing}")
    if settings["slo_url"]:
        logout = "" if settings["sp_cert"] else " (its own sign-out requests need its certificate)"
        by = binding_words(settings["slo_binding"])
        click.echo(f"hears of sign-outs at {settings['slo_url']} by {by}{logout}")
    if settings["ignore_requested_context"]:
        click.echo("answers every sign-in request whatever authentication context it asks for "
                   "(the Response says how the student signed in)")
    click.echo(f"receives: subject, {', '.join(app.released_fields) or 'nothing else'}")
    click.echo(f"grant it with `portal apps grant {app.slug} ...`")


# What `set-saml` says of each setting it changed.
_CHANGED_WORDS = {
    "acs_urls": lambda s: f"ACS URLs: {', '.join(s['acs_urls'])}",
    "acs_index": lambda s: f"ACS URLs: {', '.join(s['acs_urls'])}",     # renumbered by the metadata
    "sp_cert": lambda s: f"signing certificate: {_cert_words(s['sp_cert'])}",
    "require_signed_requests": lambda s: f"signed requests: {'required' if s['require_signed_requests'] else 'not required'}",
    "relay_state": lambda s: f"relay state: {s['relay_state'] or 'none'}",
    "slo_url": lambda s: f"hears of sign-outs at {s['slo_url']}",
    "slo_response_url": lambda s: f"answers to its sign-outs go to {s['slo_response_url'] or s['slo_url']}",
    "slo_binding": lambda s: f"hears of sign-outs by {binding_words(s['slo_binding'])}",
    "ignore_requested_context": lambda s: (
        "answers every sign-in request whatever authentication context it asks for"
        if s["ignore_requested_context"] else
        "answers a request for an authentication context only when how the student signed in meets it"),
}


def _cert_words(pem: str | None) -> str:
    if not pem:
        return "none"
    from cryptography import x509
    cert = x509.load_pem_x509_certificate(pem.encode())
    return f"the new one, valid until {cert.not_valid_after_utc:%Y-%m-%d}"


@apps_cli.command("set-saml")
@click.argument("name")
@click.option("--acs-url", "acs_urls", multiple=True,
              help="where responses are posted (HTTP-POST): replaces them all; repeat for more; the "
                   "first is the default")
@click.option("--sp-cert", "sp_cert_file", type=click.Path(dir_okay=False),
              help="the app's new signing certificate (PEM) to verify its requests")
@click.option("--metadata", "metadata_file", type=click.Path(dir_okay=False),
              help="the app's SAML metadata XML file: its ACS URLs, certificate and Single Logout "
                   "address replace those the app has (its entity ID must be the app's)")
@click.option("--relay-state", help="where the app should land after a tile launch (\"\": nowhere)")
@click.option("--ignore-requested-context/--honour-requested-context", default=None,
              help="answer the app's sign-in requests whatever authentication context they ask "
                   "for (as at add-saml), or again only when how the student signed in meets it")
@with_appcontext
def apps_set_saml(name, acs_urls, sp_cert_file, metadata_file, relay_state, ignore_requested_context):
    """Change a SAML app's ACS URLs, signing certificate or relay state, or everything its new
    metadata gives; prints what changed."""
    from portal.db import db
    from portal.sso.saml.registry import update_sp

    metadata = _read(metadata_file, "metadata file") if metadata_file else None
    sp_cert = _read(sp_cert_file, "certificate file") if sp_cert_file else None
    app, changed = _admin_call(update_sp, db.session, name, acs_urls=acs_urls, metadata=metadata,
                               sp_cert=sp_cert, relay_state=relay_state,
                               ignore_requested_context=ignore_requested_context)
    if not changed:
        click.echo(f"{shown(app.name)} had these settings already; nothing changed")
        return
    click.echo(f"changed {shown(app.name)} ({app.slug}):")
    lines = [_CHANGED_WORDS[key](app.settings) for key in changed]
    for line in dict.fromkeys(lines):
        click.echo(line)
