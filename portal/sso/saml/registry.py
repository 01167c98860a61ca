"""Registering a SAML app (service provider): the logic behind `portal apps add-saml`."""
from __future__ import annotations

from datetime import datetime, timezone

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import audit
from portal.access import FIELDS
from portal.admin.services import (
    AdminError, check_name_free, check_url, checked_app_name, checked_icon, find_app, slugify,
)
from portal.local_time import local
from portal.models import App, AppKind
from portal.models.apps import DEFAULT_RELEASE
from portal.sso.saml import constants as c
from portal.sso.saml.metadata import BadMetadata, read_sp_metadata
from portal.sso.saml.sp import NAMEID_SOURCES, ServiceProvider


def parse_attribute_map(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Read FIELD=NAME pairs (e.g. email=urn:oid:0.9.2342.19200300.100.1.3) into a mapping."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        field_name, sep, name = pair.partition("=")
        field_name, name = field_name.strip(), name.strip()
        if not sep or not field_name or not name:
            raise AdminError(f"attribute mappings look like FIELD=NAME, not {pair!r}")
        mapping[field_name] = name
    return mapping


def check_certificate(pem: str | bytes) -> str:
    """Return the PEM if it is one readable, current X.509 certificate."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise AdminError("the SP certificate is not a PEM X.509 certificate") from None
    expires = cert.not_valid_after_utc
    if expires < datetime.now(timezone.utc):
        raise AdminError(f"the SP certificate expired on {expires:%Y-%m-%d}; ask the app for its new one")
    return data.decode()


def build_sp(entity_id: str, acs_urls, *, acs_index: dict[int, str] | None = None,
             nameid: str = "subject", attributes: dict | None = None,
             relay_state: str = "", require_signed_requests: bool = False,
             sp_cert: str | bytes | None = None, slo_url: str = "",
             slo_response_url: str = "", slo_binding: str = c.BINDING_REDIRECT,
             ignore_requested_context: bool = False) -> ServiceProvider:
    """Check every setting and return the ServiceProvider they describe.

    `acs_index` is the metadata's {index: URL}; without it an ACS URL's index is its position.
    """
    entity_id = (entity_id or "").strip()
    if not entity_id:
        raise AdminError("an app needs an entity ID (--entity-id, or --metadata)")
    if len(entity_id) > 1024:
        raise AdminError("the entity ID is longer than 1024 characters")
    acs = tuple(dict.fromkeys(u.strip() for u in acs_urls if u and u.strip()))
    if not acs:
        raise AdminError("an app needs at least one --acs-url (or --metadata with one)")
    for url in acs:
        check_url(url, what="ACS URL")
    acs_index = dict(acs_index) if acs_index else dict(enumerate(acs))
    if not set(acs_index.values()) <= set(acs):
        raise AdminError("an indexed ACS URL is not one of the app's ACS URLs")
    if relay_state:
        check_url(relay_state, what="relay state URL")
    if nameid not in NAMEID_SOURCES:
        raise AdminError(f"--nameid must be one of {', '.join(NAMEID_SOURCES)}, not {nameid!r}")
    attributes = dict(attributes or {})
    for field_name, name in attributes.items():
        if field_name not in FIELDS:
            raise AdminError(f"unknown field {field_name!r} in an attribute mapping; "
                             f"fields are: {', '.join(FIELDS)}")
        if len(name) > 512:
            raise AdminError(f"attribute name for {field_name} is too long")
    sent_as: dict[str, str] = {}
    for field_name in FIELDS:
        name = attributes.get(field_name, field_name)
        if name in sent_as:
            raise AdminError(f"{sent_as[name]} and {field_name} would both be sent as attribute {name!r}")
        sent_as[name] = field_name
    cert = check_certificate(sp_cert) if sp_cert else None
    if require_signed_requests and not cert:
        raise AdminError("--require-signed-requests needs the app's certificate (--sp-cert or --metadata)")
    slo_url, slo_response_url = checked_slo_urls(slo_url, slo_response_url)
    return ServiceProvider(entity_id=entity_id, acs_urls=acs, acs_index=acs_index, nameid=nameid,
                           attributes=attributes, relay_state=relay_state,
                           require_signed_requests=require_signed_requests, cert_pem=cert,
                           slo_url=slo_url, slo_response_url=slo_response_url,
                           slo_binding=checked_slo_binding(slo_binding),
                           ignore_requested_context=bool(ignore_requested_context))


# What `--slo-binding` takes, and the binding each names.
SLO_BINDINGS = {"redirect": c.BINDING_REDIRECT, "post": c.BINDING_POST}


def checked_slo_binding(binding: str | None) -> str:
    """The SAML binding URN of an app's Single Logout address: `binding` as a URN or as
    `--slo-binding` names it (redirect, post); HTTP-Redirect when not given."""
    binding = (binding or "").strip()
    if not binding:
        return c.BINDING_REDIRECT
    if binding in SLO_BINDINGS.values():
        return binding
    if binding.lower() in SLO_BINDINGS:
        return SLO_BINDINGS[binding.lower()]
    raise AdminError(f"--slo-binding must be one of {', '.join(SLO_BINDINGS)}, not {binding!r}")


def checked_slo_urls(slo_url: str | None, slo_response_url: str | None = "") -> tuple[str, str]:
    """Check an app's Single Logout addresses; ("", "") when it has none."""
    slo_url, slo_response_url = (slo_url or "").strip(), (slo_response_url or "").strip()
    if slo_response_url and not slo_url:
        raise AdminError("a logout response address needs the logout address itself")
    for url, what in ((slo_url, "logout URL"), (slo_response_url, "logout response URL")):
        if url:
            check_url(url, what=what)
    return slo_url, slo_response_url


def _metadata(data: bytes):
    try:
        return read_sp_metadata(data)
    except BadMetadata as e:
        raise AdminError(e.reason) from None


def saml_app(db: Session, name: str) -> App:
    """The SAML app named `name` (or slug), or AdminError."""
    app = find_app(db, name)
    if app.kind is not AppKind.saml:
        raise AdminError(f"{app.name} does not sign in with SAML")
    return app


def register_sp(db: Session, name: str, *, entity_id: str | None = None, acs_urls=(),
                metadata: bytes | None = None, nameid: str = "subject",
                attributes: dict | None = None, relay_state: str = "",
                require_signed_requests: bool = False, sp_cert: str | bytes | None = None,
                icon: str = "", slo_url: str = "", slo_binding: str = "",
                ignore_requested_context: bool = False) -> App:
    """Register a SAML app. Metadata fills in what the arguments leave out; they must agree.

    `slo_binding` (redirect or post, or its URN) is how the app's --slo-url takes our logout
    messages; HTTP-Redirect when not given. `ignore_requested_context`: see ServiceProvider."""
    name = checked_app_name(name)
    acs_urls, acs_index = list(acs_urls or ()), None
    slo_response_url = ""
    if slo_binding and not slo_url:
        raise AdminError("--slo-binding says how --slo-url takes sign-outs: give --slo-url too")
    if metadata is not None:
        md = _metadata(metadata)
        if entity_id and entity_id.strip() != md.entity_id:
            raise AdminError(f"--entity-id {entity_id!r} does not match the metadata's {md.entity_id!r}")
        entity_id = md.entity_id
        if not acs_urls:  # --acs-url, when given, replaces the metadata's ACS URLs and indexes
            acs_urls, acs_index = list(md.acs_urls), md.acs_index
        sp_cert = sp_cert or md.cert_pem
        require_signed_requests = require_signed_requests or md.authn_requests_signed
        if not slo_url:   # --slo-url, when given, replaces the metadata's
            slo_url, slo_response_url, slo_binding = md.slo_url, md.slo_response_url, md.slo_binding
    icon = checked_icon(icon)
    sp = build_sp(entity_id or "", acs_urls, acs_index=acs_index, nameid=nameid, attributes=attributes,
                  relay_state=relay_state, require_signed_requests=require_signed_requests,
                  sp_cert=sp_cert, slo_url=slo_url, slo_response_url=slo_response_url,
                  slo_binding=slo_binding, ignore_requested_context=ignore_requested_context)

    slug = slugify(name)
    check_name_free(db, name, slug)
    taken = db.scalar(select(App).where(App.client_id == sp.entity_id))
    if taken is not None:
        removed = f" ({taken.name}, removed on {local(taken.removed_at):%Y-%m-%d})" if taken.removed_at else ""
        raise AdminError(f"an app with entity ID {sp.entity_id!r} exists already{removed}")
    released = list(DEFAULT_RELEASE)
    if sp.nameid != "subject" and sp.nameid not in released:
        # The district named this field as the app's NameID, so the app must receive it.
        released.append(sp.nameid)
    app = App(slug=slug, name=name, kind=AppKind.saml, client_id=sp.entity_id,
              url=sp.relay_state, icon=icon, settings=sp.to_settings(),
              released_fields=[f for f in FIELDS if f in released])
    db.add(app)
    db.commit()
    return app


def update_sp(db: Session, name: str, *, acs_urls=(), metadata: bytes | None = None,
              sp_cert: str | bytes | None = None, relay_state: str | None = None,
              ignore_requested_context: bool | None = None) -> tuple[App, list[str]]:
    """Change the SAML app named `name` (or slug): its ACS URLs, its signing certificate, its
    relay state, or everything its metadata gives, read and checked as register_sp reads and
    checks them (the metadata must be for the app's own entity ID). What the metadata does not
    give (a certificate, a Single Logout address) stays; --acs-url and --sp-cert win over it, as
    at add-saml; signed requests once required stay required. Returns the app and the names of
    the settings that changed (none: it had these already)."""
    app = saml_app(db, name)
    if (not acs_urls and metadata is None and sp_cert is None and relay_state is None
            and ignore_requested_context is None):
        raise AdminError("say what to change: --acs-url (repeat for several), --sp-cert, --metadata, "
                         "--relay-state or --ignore-requested-context/--honour-requested-context")
    old = ServiceProvider.from_app(app)
    acs, acs_index, cert = list(old.acs_urls), old.acs_index, old.cert_pem
    signed, slo_url, slo_response_url = old.require_signed_requests, old.slo_url, old.slo_response_url
    slo_binding = old.slo_binding
    if metadata is not None:
        md = _metadata(metadata)
        if md.entity_id != old.entity_id:
            raise AdminError(f"the metadata is for entity ID {md.entity_id!r}, not {app.name}'s "
                             f"({old.entity_id!r}); nothing changed")
        acs, acs_index = list(md.acs_urls), md.acs_index
        cert = md.cert_pem or cert
        signed = signed or md.authn_requests_signed
        if md.slo_url:
            slo_url, slo_response_url, slo_binding = md.slo_url, md.slo_response_url, md.slo_binding
    if acs_urls:
        acs, acs_index = list(acs_urls), None
    if sp_cert is not None:
        cert = sp_cert
    new = build_sp(old.entity_id, acs, acs_index=acs_index, nameid=old.nameid, attributes=old.attributes,
                   relay_state=old.relay_state if relay_state is None else relay_state.strip(),
                   require_signed_requests=signed, sp_cert=cert, slo_url=slo_url,
                   slo_response_url=slo_response_url, slo_binding=slo_binding,
                   ignore_requested_context=(old.ignore_requested_context if ignore_requested_context is None
                                             else ignore_requested_context))
    before, after = old.to_settings(), new.to_settings()
    changed = [key for key in after if after[key] != before[key]]
    if changed:
        app.settings = {**(app.settings or {}), **after}
        app.url = new.relay_state
        audit.record("app_settings_changed", app=app, commit=False,
                     data={"changed": changed, **{k: after[k] for k in changed if k in _SHOWN}})
        db.commit()
    return app, changed


# The settings an audit event names with their new values (a certificate is named only).
_SHOWN = ("acs_urls", "relay_state", "require_signed_requests", "slo_url", "slo_response_url",
          "slo_binding", "ignore_requested_context")


def set_slo_url(db: Session, name: str, url: str | None, binding: str = "") -> App:
    """Tell the SAML app named `name` (or slug) when a student signs out, at its Single Logout
    address `url` (None or "": no longer), by `binding` (redirect or post; when not given, the
    binding it has: an app that takes only HTTP-POST keeps it)."""
    app = saml_app(db, name)
    if binding and not url:
        raise AdminError("--slo-binding says how the address takes sign-outs: give the address too")
    settings = dict(app.settings or {})
    settings["slo_url"], settings["slo_response_url"] = checked_slo_urls(url)
    settings["slo_binding"] = checked_slo_binding(binding or settings.get("slo_binding"))
    app.settings = settings
    db.commit()
    return app
