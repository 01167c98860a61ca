"""Apps and grants: the logic behind `portal apps ...` and the admin pages."""
from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timezone
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, selectinload

from portal import audit
from portal.local_time import local
from portal.names import by_word
from portal.models import App, AppKind, District, Event, Grant, Person, Role, School, Section


class AdminError(ValueError):
    """Bad input from an admin; the message is one plain line."""


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:64] or "app"


MAX_NAME = 255  # App.name is VARCHAR(255)
MAX_URL = 2048  # App.url is VARCHAR(2048)


def check_url(url: str, *, what: str = "URL") -> str:
    """Return `url` if it is one plain http(s) address, or AdminError saying why not."""
    if len(url) > MAX_URL:
        raise AdminError(f"{what} is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise AdminError(f"{what} is malformed (check its host and port number): {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise AdminError(f"{what} must start with https:// (or http:// for testing): {url!r}")
    # urlsplit drops tabs and line breaks silently; a stored one breaks the launch redirect later.
    if any(c.isspace() or not c.isprintable() for c in url):
        raise AdminError(f"{what} may not contain spaces, line breaks or other invisible "
                         f"characters: {url!r}")
    return url


def checked_grade(value: str, *, web: bool = False) -> str:
    """The OneRoster grade code an admin means ("3" is 03, "kg" is KG), or AdminError (worded
    for the command line's --grade, or with `web` for the app page's Grade)."""
    from portal.roster.parse import GRADES
    grade = value.strip()
    if grade.isascii() and grade.isdigit() and len(grade) <= 2 and 1 <= int(grade) <= 13:
        return f"{int(grade):02d}"
    if grade.lower() in GRADES:
        return GRADES[grade.lower()]
    if "," in grade:
        raise AdminError("a grant names one grade: grant the app once for each grade")
    if web:
        raise AdminError(f"the grade must be one the roster uses (KG, 01 ... 13, PK, ...), not {value!r}")
    raise AdminError(f"--grade must be a OneRoster grade as in the roster (KG, 01 ... 13, PK, ...), "
                     f"not {value!r}")


def checked_icon(value: str) -> str:
    """The icon as the portal stores it (a data: URL), or AdminError saying why not."""
    from portal.admin.icons import IconError, load_icon
    try:
        return load_icon(value)
    except IconError as e:
        raise AdminError(str(e)) from None


def one_line(text: str, what: str, limit: int) -> str:
    """An admin's free text (a reason, a vendor's answer) as one line of at most `limit`
    characters, its runs of white space made single spaces, or AdminError saying why not."""
    text = " ".join(text.split())
    if len(text) > limit:
        raise AdminError(f"the {what} is longer than {limit} characters")
    if not text.isprintable():
        raise AdminError(f"the {what} may not contain invisible characters")
    return text


# Characters that do something other than draw themselves: the C0 and C1 controls and DEL (a
# terminal obeys them: an escape sequence retitles the window or clears the line, a carriage
# return goes back over what was printed) and the text-direction marks, embeddings, overrides and
# isolates (text that displays as other text). Other invisible characters (a zero-width joiner in
# an emoji or a Persian name) do nothing harmful and are kept.
_DIRECTION = frozenset([0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def printable_line(text: str, limit: int | None = None) -> str:
    """Text as one line that prints as it reads, whoever typed it: each run of white space (a
    line break, a carriage return, a tab) one space, none at either end, and each control or
    direction character a "?", cut to `limit` characters. For text taken as sent rather than
    refused (a device's own name for itself) and for stored text a command prints (a name kept
    before the portal refused such characters)."""
    text = " ".join(str(text).split())
    if not text.isprintable():
        text = "".join("?" if unicodedata.category(c) == "Cc" or ord(c) in _DIRECTION else c for c in text)
    return text if limit is None else text[:limit].rstrip()


def checked_app_name(name: str) -> str:
    """The name as the tiles show it, or AdminError saying why not."""
    name = (name or "").strip()
    if not name:
        raise AdminError("an app needs a name")
    if len(name) > MAX_NAME:
        raise AdminError(f"an app name is at most {MAX_NAME} characters")
    if not name.isprintable():
        raise AdminError(f"an app name is one line of plain text: {name!r}")
    return name


def find_app(db: Session, name: str, *, removed: bool = False) -> App:
    """The app called `name` (or with that slug), or AdminError. A removed app only when
    `removed` (its records: asking its vendor to delete what it received); else it is refused."""
    app = db.scalar(select(App).where((App.name == name) | (App.slug == name)))
    if app is None:
        raise AdminError(f"there is no app called {name!r} (see `portal apps list`)")
    if app.removed_at is not None and not removed:
        raise AdminError(f"{app.name} was removed on {local(app.removed_at):%Y-%m-%d}; nothing changed")
    return app


def check_name_free(db: Session, name: str, slug: str) -> None:
    """AdminError if an app has this name or slug already, in use or removed (a removed app keeps
    its name: the records of what it received name it)."""
    found = db.scalar(select(App).where((App.name == name) | (App.slug == slug)))
    if found is not None and found.removed_at is not None:
        raise AdminError(f"an app called {found.name!r} was removed on {local(found.removed_at):%Y-%m-%d} and "
                         "keeps its name (the records of what it received name it): choose another")
    if found is not None:
        raise AdminError(f"an app called {name!r} exists already")


def remove_app(db: Session, name: str, *, now) -> tuple[App, list[str]]:
    """Retire an app: its grants go, so it is on no tile and opens for no one; nothing signs in
    to it any more (SAML requests are refused as for an app not granted, OpenID codes, tokens and
    userinfo at once: portal.sso.oidc.clients.find_client). Its row stays, and with it its name,
    which the records of what it received (kept as long as the student's records: FERPA, 34 CFR
    99.32), its deletion requests, opt-outs and audit events go on showing. Returns the app and
    whom its grants covered."""
    app = find_app(db, name)
    covered = [grant.describe() for grant in app.grants]
    app.grants.clear()
    app.removed_at = now
    audit.record("app_removed", app=app, commit=False, data={"grants": covered})
    db.commit()
    return app, covered


# In an OpenID app's settings: when (Unix time) `portal apps restore` put it back in use. Access
# tokens issued before then, before it was removed, do not work again
# (portal.sso.oidc.server.AccessToken.get_client).
RESTORED_AT = "restored_at"


def restore_app(db: Session, name: str) -> tuple[App, list[str] | None]:
    """Undo `remove_app` (an app removed by mistake, or a vendor the district takes back): the app
    is in use again under its own name, slug and, for SAML, entity ID, with its released fields
    and its OpenID client secret as they were. Its grants do not come back by themselves: the
    roster may have changed since, and the admin grants it again knowingly. Returns the app and
    whom its grants covered when it was removed (from the removal's record; None when that record
    is gone: `portal audit purge` deletes old app changes)."""
    app = find_app(db, name, removed=True)
    if app.removed_at is None:
        raise AdminError(f"{app.name} is in use, not removed; nothing changed")
    removal = db.scalar(select(Event).where(Event.kind == "app_removed", Event.app_id == app.id)
                        .order_by(Event.id.desc()).limit(1))
    covered = list((removal.data or {}).get("grants", [])) if removal is not None else None
    app.removed_at = None
    if app.kind is AppKind.oidc:
        # Its access tokens from before the removal stay dead (they expire within the hour anyway).
        app.settings = {**(app.settings or {}), RESTORED_AT: datetime.now(timezone.utc).timestamp()}
    audit.record("app_restored", app=app, commit=False)
    db.commit()
    return app, covered


def add_link_app(db: Session, name: str, url: str, icon: str = "") -> App:
    """Register an app that launches by plain redirect."""
    name = checked_app_name(name)
    url = check_url(url.strip())
    icon = checked_icon(icon)
    slug = slugify(name)
    check_name_free(db, name, slug)
    app = App(slug=slug, name=name, kind=AppKind.link, url=url, icon=icon, settings={})
    db.add(app)
    db.commit()
    return app


def only_district(db: Session) -> int | None:
    """The id of the roster's one district; None when it has none or several."""
    ids = list(db.scalars(select(District.id).limit(2)))
    return ids[0] if len(ids) == 1 else None


def grants_of_district(db: Session, grants, district_id: int) -> list[Grant]:
    """Of these grants, those a district's admin may see and remove: the grants to the district,
    to its schools and classes, and (when the roster has one district) the grants to a grade or a
    role that the command line made for everyone. Apps are shared by the districts of a portal;
    another district's grants are none of this district's business."""
    grants = list(grants)
    sole = only_district(db) == district_id if any(
        g.district_id is None and g.school_id is None and g.section_id is None for g in grants) else False
    mine = []
    for grant in grants:
        if grant.district_id is not None:
            ours = grant.district_id == district_id
        elif grant.school_id is not None:
            ours = grant.school.district_id == district_id
        elif grant.section_id is not None:
            ours = grant.section.school.district_id == district_id
        else:
            ours = sole
        if ours:
            mine.append(grant)
    return mine


def _grant_for(db: Session, app: App, *, district: bool, school: str | None, grade: str | None,
               section: str | None, role: str | None, actor: Person | None = None) -> Grant:
    """The (unsaved) grant of `app` to the group these options name, or AdminError. With an
    `actor` (an admin on the web), the grant covers the actor's district only, and only its
    schools and classes can be named."""
    if not (district or school or grade or section or role):
        raise AdminError("say who gets the app: --district, --school, --grade, --section or --role")
    # Built by id and added at the end: an object half-attached to the session would be
    # autoflushed by the look-ups below.
    grant = Grant(app_id=app.id)
    if school or section:
        pass  # a school or a class names its district (on the web it must be the actor's, below)
    elif actor is not None:
        # A grade or a role alone would reach every district of the portal.
        grant.district_id = actor.district_id
    elif district:
        districts = list(db.scalars(select(District)))
        if len(districts) != 1:
            raise AdminError("--district needs exactly one district in the roster; use --school")
        grant.district_id = districts[0].id
    mine = (School.district_id == actor.district_id,) if actor is not None else ()
    if school:
        found = db.scalar(select(School).where(School.sourced_id == school, *mine))
        if found is None:
            raise AdminError(f"there is no school with id {school!r}")
        grant.school_id = found.id
    if section:
        found = db.scalar(select(Section).join(School, School.id == Section.school_id)
                          .where(Section.sourced_id == section, *mine))
        if found is None:
            raise AdminError(f"there is no section with id {section!r}")
        if grant.school_id is not None and found.school_id != grant.school_id:
            # Every criterion must hold: a class of another school would cover no one at all.
            raise AdminError(f"section {section!r} is not a class of school {school!r}; give "
                             "the school or the section alone, or a class of that school")
        grant.section_id = found.id
    if grade is not None:
        grant.grade = checked_grade(grade, web=actor is not None)
    if role:
        try:
            grant.role = Role(role.replace(" ", "_").replace("-", "_"))
        except ValueError:
            if actor is not None:     # the page's Role, by the names it shows
                raise AdminError(f"the role must be {', '.join(r.label for r in list(Role)[:-1])} or "
                                 f"{list(Role)[-1].label}, not {role!r}") from None
            raise AdminError(f"role must be one of {', '.join(r.value for r in Role)}") from None
    return grant


def _same_grant(grant: Grant):
    """The stored grant naming exactly the group `grant` names (a select of its id). A school or
    a class names its district: a grant stored with both (as --district --school once made it,
    and `apps list` shows it without the district) is the same group."""
    columns = ["app_id", "school_id", "section_id", "grade", "role"]
    if grant.school_id is None and grant.section_id is None:
        columns.append("district_id")
    same = [getattr(Grant, c).is_not_distinct_from(getattr(grant, c)) for c in columns]
    return select(Grant.id).where(*same).limit(1)


def grant_app(db: Session, name: str, *, district: bool = False, school: str | None = None,
              grade: str | None = None, section: str | None = None,
              role: str | None = None, actor: Person | None = None) -> Grant:
    """Let a group launch an app; every criterion given must hold (IDs are OneRoster sourcedIds).
    The audit log records the change and who made it (`actor`; None: the command line)."""
    app = find_app(db, name)
    grant = _grant_for(db, app, district=district, school=school, grade=grade, section=section, role=role,
                       actor=actor)
    name, same = app.name, _same_grant(grant)
    already = f"{name} is already granted to exactly that group; nothing changed"
    if db.scalar(same) is not None:
        raise AdminError(already)
    db.add(grant)
    try:
        db.flush()
    except IntegrityError:
        # Granted at the same moment (two admins, a double click): both found none, and the
        # unique index kept the other's. That one is the grant; this one was never made.
        db.rollback()
        if db.scalar(same) is not None:
            raise AdminError(already) from None
        raise AdminError(f"{name} or that group changed while granting; nothing changed: "
                         "try again") from None
    audit.record("app_granted", actor=actor, app=app, commit=False,
                 data={"to": grant.describe(), **audit.grant_scope(grant)})
    db.commit()
    return grant


def grant_mark(grant: Grant) -> str:
    """The group a grant names, by the ids and codes it holds, as the Remove button of an app's
    page carries it (remove_grant's `expect`): on SQLite a removed grant's id is given to the next
    grant made (app_grant has no AUTOINCREMENT), so a button from an older page would otherwise
    remove another group."""
    role = grant.role.value if grant.role is not None else None
    return "/".join("" if v is None else str(v)
                    for v in (grant.district_id, grant.school_id, grant.section_id, grant.grade, role))


def remove_grant(db: Session, name: str, *, district: bool = False, school: str | None = None,
                 grade: str | None = None, section: str | None = None, role: str | None = None,
                 grant_id: int | None = None, actor: Person | None = None,
                 expect: str | None = None) -> str:
    """Stop a group launching an app: the grant naming exactly these options (or `grant_id`, and
    then, with `expect`, only if it still names the group grant_mark `expect` says the admin's
    page showed). Returns whom it covered. Sessions stay; the next tile page and launch no longer
    offer it."""
    app = find_app(db, name)
    if grant_id is not None:
        grant = db.scalar(select(Grant).where(Grant.id == grant_id, Grant.app_id == app.id))
    else:
        wanted = _grant_for(db, app, district=district, school=school, grade=grade, section=section,
                            role=role)
        found_id = db.scalar(_same_grant(wanted))
        grant = db.get(Grant, found_id) if found_id is not None else None
    if grant is not None and actor is not None and not grants_of_district(db, [grant], actor.district_id):
        grant = None    # another district's grant: as if it were not there
    if grant is None and grant_id is not None:
        raise AdminError("that grant is no longer there; nothing changed")
    if grant is not None and expect is not None and expect != grant_mark(grant):
        raise AdminError(f"someone changed who may open {app.name} since you opened this page, and "
                         "that grant is no longer there; nothing changed. Here is who may open it now")
    if grant is None:
        raise AdminError(f"{app.name} has no grant to exactly that group; nothing changed "
                         "(portal apps list shows its grants)")
    covered = grant.describe()
    db.delete(grant)
    audit.record("app_ungranted", actor=actor, app=app, commit=False,
                 data={"from": covered, **audit.grant_scope(grant)})
    db.commit()
    return covered


def shown_fields(app: App) -> str:
    """The fields an app receives besides the subject, as its page's "Fields to send" form
    carries them back (release_fields' `expect`)."""
    return ",".join(sorted(set(app.released_fields or ()) - {"subject"}))


def receives(app: App) -> str:
    """What an app receives, in a line: "subject, given_name, email"."""
    return f"subject, {', '.join(f for f in app.released_fields if f != 'subject') or 'nothing else'}"


class FieldsChanged(AdminError):
    """The fields an app receives changed since the page whose form asks to change them."""


def release_fields(db: Session, name: str, fields: list[str], *, actor: Person | None = None,
                   expect: str | None = None) -> App:
    """Set exactly which fields an app receives (the subject is always sent); the audit log
    records the new list and who set it.

    `expect`: shown_fields(app) as the admin's page showed them. The form sends the whole list,
    so one from a page older than the app's fields (another admin, or another tab, changed them
    since) would send again a field just stopped: FieldsChanged then, and nothing changes."""
    from portal.access import UnknownField, check_fields
    app = find_app(db, name)
    if expect is not None:
        # Read again under a lock (PostgreSQL): a change committed meanwhile is seen, and one
        # made at the same moment waits for this one.
        db.refresh(app, ["released_fields"], with_for_update=True)
        if expect != shown_fields(app):
            raise FieldsChanged(f"someone changed the fields {app.name} receives since you opened this "
                                f"page; nothing changed. Here is what it receives now: {receives(app)}")
    try:
        wanted = [f for f in check_fields(fields) if f != "subject"]
    except UnknownField as e:
        raise AdminError(str(e)) from None
    if actor is not None and only_district(db) != actor.district_id:
        mine = len(grants_of_district(db, app.grants, actor.district_id))
        if not mine:
            # Open to no one yet, or to others only: the portal's operator decides (another
            # district may be given it later, with what this one chose).
            raise AdminError(f"{app.name} is not open to your district: grant it first")
        if mine != len(app.grants) and not set(wanted) <= set(app.released_fields or ()):
            # The fields are the app's, for every district it is open to: one district's admin
            # decides them only for an app no other district uses; but any may send it less.
            raise AdminError(f"{app.name} is open to another district of this portal too, and what "
                             "it receives is the same for all of them: you may send it fewer "
                             "fields; for more, ask the portal's operator (portal apps release)")
    nameid = (app.settings or {}).get("nameid", "subject") if app.kind is AppKind.saml else "subject"
    if nameid != "subject" and nameid not in wanted:
        # The app knows its students by this field (its SAML NameID): without it no launch works.
        raise AdminError(f"{app.name} knows its students by their {nameid.replace('_', ' ')} (its "
                         f"SAML NameID), so it must keep receiving that field; nothing changed")
    app.released_fields = wanted
    audit.record("app_release_set", actor=actor, app=app, commit=False,
                 data={"fields": ["subject", *app.released_fields]})
    db.commit()
    return app


def list_apps(db: Session, *, removed: bool = False) -> list[App]:
    """Return every app in use by name (and, with `removed`, the removed ones after them), with
    its grants and the schools and sections they name."""
    grants = selectinload(App.grants)
    query = select(App).options(
        defer(App.icon), grants.selectinload(Grant.school), grants.selectinload(Grant.section))
    if not removed:
        query = query.where(App.removed_at.is_(None))
    found = by_word(db.scalars(query))     # dictionary order, as the tiles (portal.names)
    return [app for app in found if app.removed_at is None] + [app for app in found if app.removed_at]
