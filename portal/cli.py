"""`portal ...` commands: every admin action is scriptable (see DESIGN.md's contract)."""
from __future__ import annotations

import logging
import os
import shlex
import signal
import sys
from pathlib import Path

import click
import redis
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import func, select

from portal.config import ConfigError
from portal.errors import database_said
from portal.local_time import local
from portal.redis_store import REFUSED_PASSWORD, refused_password
from portal.roster.demo import MAX_DEMO_STUDENTS


def _create_app():
    from portal import create_app
    try:
        return create_app(command_line=True)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None


class PortalGroup(FlaskGroup):
    """`portal`: a command that meets a database without the newest schema says what to run."""

    def main(self, args=None, *rest, **kwargs):
        # An argument that is not UTF-8 (a Latin-1 export read by a script) reaches Python as
        # text with stand-ins for its bytes, which no name, database or message can hold.
        for arg in sys.argv[1:] if args is None else args:
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError:
                if _names_a_file(arg):
                    continue    # a file's name may be any bytes: Python opens it all the same
                shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                click.echo(f"Error: the argument {shown!r} is not UTF-8 text (it may come from a "
                           "file in another encoding): save the file as UTF-8 and run it again; "
                           "nothing changed", err=True)
                sys.exit(2)
        return super().main(args, *rest, **kwargs)

    def invoke(self, ctx):
        from sqlalchemy.exc import OperationalError, ProgrammingError
        try:
            return super().invoke(ctx)
        except (OperationalError, ProgrammingError) as e:
            state = _schema_state(ctx)
            if state == "older":
                fail("the database does not have this version's tables yet: "
                     "run `portal db upgrade` first")
            if state == "newer":
                fail(newer_database(""))
            if isinstance(e, OperationalError):     # not reachable, refused, locked: not a bug
                fail(f"the database could not be used ({database_said(e, _password(ctx))}): check "
                     f"PORTAL_DATABASE_URL and that the database server is running")
            raise


def _names_a_file(arg: str) -> bool:
    """Whether an argument names a file or folder there is (or one to write in a folder there is)."""
    value = arg.partition("=")[2] if arg.startswith("--") and "=" in arg else arg
    try:
        return os.path.lexists(value) or (os.sep in value and os.path.isdir(os.path.dirname(value)))
    except (OSError, ValueError):
        return False


def _schema_state(ctx) -> str | None:
    from flask.cli import ScriptInfo

    from portal.db import db
    from portal.migrate import schema_state
    try:
        app = ctx.ensure_object(ScriptInfo).load_app()
        with app.app_context():
            return schema_state(db.engine)[0]
    except Exception:  # the database cannot be read at all: the original error says more
        return None


def _password(ctx) -> str | None:
    """The database's password, kept out of a command's words (its address is in the settings)."""
    from flask.cli import ScriptInfo
    from sqlalchemy.engine import make_url
    try:
        return make_url(ctx.ensure_object(ScriptInfo).load_app().config["SQLALCHEMY_DATABASE_URI"]).password
    except Exception:  # no app: then no address was read, and no password can be in the words
        return None


def newer_database(revisions: str) -> str:
    """The one line for a database a newer portal migrated (`revisions`: " (revision ...)" or "")."""
    return (f"the database was migrated by a newer version of the portal{revisions}, which this "
            "version cannot upgrade or use: run the newer version; nothing changed")


main = PortalGroup(create_app=_create_app, help="The district's student portal.",
                   add_version_option=False, load_dotenv=False, add_default_commands=False)
# Only what serves a district: Flask's `run` would serve a development server (`portal dev` is
# ours, gunicorn serves production) and `routes` is for Flask's developers; `shell` stays. Nor
# Flask's options: --env-file needs python-dotenv (not installed: the README loads the settings
# file with the shell), --app would load another app, --debug would serve one with the debugger.
from flask.cli import shell_command  # noqa: E402

main.add_command(shell_command)
main.params = [p for p in main.params if p.name not in ("env_file", "app", "debug")]


def fail(message: str):
    raise click.ClickException(message)


@click.group("db")
def db_cli():
    """Database schema."""


@db_cli.command("upgrade")
@with_appcontext
def db_upgrade():
    """Create or upgrade the tables to the newest schema."""
    from alembic.util import CommandError

    from portal.db import db
    from portal.migrate import DatabaseBusy, MigrationFailed, schema_state, upgrade
    try:
        before, after = upgrade(db.engine)
    except DatabaseBusy as e:
        fail(str(e))
    except MigrationFailed as e:
        fail(f"{e}: fix that and run `portal db upgrade` again")
    except CommandError as e:
        state, revisions = schema_state(db.engine)
        if state == "newer":
            fail(newer_database(f" (revision {', '.join(revisions)})"))
        fail(f"the database could not be upgraded ({e}); nothing changed")
    if before is None:
        click.echo(f"created the database's tables (revision {after})")
    elif before == after:
        click.echo(f"the database was already up to date (revision {after})")
    else:
        click.echo(f"upgraded the database from revision {before} to {after}")


@click.group("users")
def users_cli():
    """People's sign-ins."""


@users_cli.command("set-password")
@click.argument("username")
@with_appcontext
def users_set_password(username):
    """Set USERNAME's password, read from standard input (one line)."""
    from portal.auth.passwords import WeakPassword
    from portal.auth.services import set_password
    from portal.db import db

    person = person_named(username)
    if sys.stdin.isatty():
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        ended = set_password(db.session, current_app.extensions["redis"], person, password)
    except WeakPassword as e:
        fail(str(e))
    except redis.RedisError as e:
        if refused_password(e):
            fail(f"{REFUSED_PASSWORD}, and a new password must end the sessions signed in with the "
                 f"old one: set the password Redis expects there and run this again")
        fail("Redis cannot be reached, and a new password must end the sessions signed in with "
             "the old one: start Redis (or set PORTAL_REDIS_URL) and run this again")
    if not ended:
        # The password is set: running this again would not end what this run could not.
        fail(f"password set for {person.username}, but Redis failed before their other sessions "
             "ended: those begun with the old password no longer work, but one begun otherwise "
             "(with a badge), or in an app, may last until it times out")
    click.echo(f"password set for {person.username}; their other sessions have ended")


def person_named(username: str):
    """The person with this username, or a one-line refusal (for every `portal` command)."""
    from portal.auth.services import normalize_username
    from portal.db import db
    from portal.models import Person
    person = db.session.scalar(select(Person).where(Person.username == normalize_username(username)))
    if person is None:
        fail(f"there is no user called {username!r}")
    return person


def _person_and_app(username: str, app_name: str, *, removed: bool = False):
    from portal.admin.services import find_app
    from portal.db import db
    return person_named(username), _admin_call(find_app, db.session, app_name, removed=removed)


@users_cli.command("hold")
@click.argument("username")
@click.option("--reason", default="", help="why, in a few words (shown to admins)")
@with_appcontext
def users_hold(username, reason):
    """Put USERNAME's account on hold: sessions end, no sign-in, no app, until `unhold`."""
    from portal.admin.holds import place_hold
    from portal.badges.flow import now
    from portal.db import db
    person = person_named(username)
    ended = _admin_call(place_hold, db.session, current_app.extensions["redis"], person, actor=None,
                        reason=reason, now=now())
    if ended is None:
        click.echo(f"{person.username} is on hold: no sign-in and no app until `portal users "
                   "unhold`; the session store could not be reached, so their sessions are refused "
                   "but not yet ended (lifting the hold ends them)")
    else:
        click.echo(f"{person.username} is on hold: no sign-in and no app until `portal users unhold`; "
                   f"{ended} session{'' if ended == 1 else 's'} ended")


@users_cli.command("unhold")
@click.argument("username")
@with_appcontext
def users_unhold(username):
    """Lift the hold on USERNAME's account."""
    from portal.admin.holds import lift_hold
    from portal.db import db
    person = person_named(username)
    _admin_call(lift_hold, db.session, current_app.extensions["redis"], person, actor=None)
    click.echo(f"{person.username} may sign in again")


@users_cli.command("opt-out")
@click.argument("username")
@click.argument("app_name", metavar="APP")
@with_appcontext
def users_opt_out(username, app_name):
    """Keep USERNAME from APP whatever the grants say (a family's choice)."""
    from portal.admin.optouts import opt_out
    from portal.badges.flow import now
    from portal.db import db
    person, app = _person_and_app(username, app_name)
    if opt_out(db.session, person, app, actor=None, now=now(), client=current_app.extensions["redis"]):
        click.echo(f"{person.username} is opted out of {shown(app.name)}: it is off their tiles and will not open")
    else:
        click.echo(f"{person.username} was already opted out of {shown(app.name)}")


@users_cli.command("opt-in")
@click.argument("username")
@click.argument("app_name", metavar="APP")
@with_appcontext
def users_opt_in(username, app_name):
    """Undo `opt-out`: the grants decide again whether USERNAME may open APP."""
    from portal.admin.optouts import opt_in
    from portal.db import db
    person, app = _person_and_app(username, app_name)
    if opt_in(db.session, person, app, actor=None):
        click.echo(f"{person.username} is no longer opted out of {shown(app.name)}")
    else:
        click.echo(f"{person.username} was not opted out of {shown(app.name)}; nothing changed")


@click.group("apps")
def apps_cli():
    """Apps, who may launch them, and what they receive."""


def shown(text) -> str:
    """Stored text (an app's, a school's or a device's name, a class title) as one line that
    prints as it reads: a name kept from before such characters were refused, or a roster's
    school name with a C1 control, would otherwise be obeyed by the terminal."""
    from portal.admin.services import printable_line
    return printable_line(text)


def _admin_call(fn, *args, **kwargs):
    from portal.admin.services import AdminError
    try:
        return fn(*args, **kwargs)
    except AdminError as e:
        fail(str(e))


@apps_cli.command("list")
@with_appcontext
def apps_list():
    """List every app with its kind and grants, and the removed apps (whose names stay taken)."""
    from portal.admin.services import list_apps
    from portal.db import db
    apps = list_apps(db.session, removed=True)
    if not apps:
        click.echo("no apps yet: add one with `portal apps add-link NAME URL`")
    for app in apps:
        grants = "; ".join(g.describe() for g in app.grants) or "not granted to anyone"
        if app.removed_at is not None:
            grants = f"removed on {local(app.removed_at):%Y-%m-%d}"
        click.echo("\t".join(map(shown, (app.name, app.kind.value, app.url or "-", grants))))


@apps_cli.command("remove")
@click.argument("name")
@click.confirmation_option("--yes", prompt="Remove the app? No student will be able to open it, and "
                                           "its grants go (`portal apps restore` brings the app "
                                           "back, not its grants)")
@with_appcontext
def apps_remove(name):
    """Remove an app: it leaves every tile and opens for no one; its grants go, and nothing signs in
    to it any more (an OpenID app's codes, tokens and userinfo stop at once). What it received
    about each student stays on record under its name (FERPA), as do its deletion requests, so the
    name stays taken: an app added later needs another. Asks first, unless --yes."""
    from portal.admin.services import remove_app
    from portal.badges.flow import now
    from portal.db import db
    from portal.models import AppKind
    app, covered = _admin_call(remove_app, db.session, name, now=now())
    click.echo(f"removed {shown(app.name)} ({app.slug}): it is on no tile and opens for no one")
    click.echo(shown(f"its grants are gone: {'; '.join(covered)}") if covered else "it had no grants")
    if app.kind is AppKind.oidc:
        click.echo("its OpenID codes and tokens no longer work")
    click.echo("the records of what it received keep its name, which no new app can take "
               "(`portal deletions ask USERNAME APP` still reaches its vendor)")


@apps_cli.command("restore")
@click.argument("name")
@with_appcontext
def apps_restore(name):
    """Bring back an app removed by mistake: it is in use again under its name (and a SAML app's
    entity ID), with the fields it received and its OpenID client secret as they were, but on no
    tile until you grant it again (the grants it had are printed)."""
    from portal.admin.services import restore_app
    from portal.db import db
    from portal.models import AppKind
    app, covered = _admin_call(restore_app, db.session, name)
    click.echo(f"restored {shown(app.name)} ({app.slug}): it opens again for whoever it is granted to, "
               "and it is granted to no one yet")
    if covered is None:
        click.echo("the record of whom it was granted to when it was removed is gone (`portal audit "
                   "purge` deletes old app changes)")
    elif covered:
        click.echo(shown(f"when it was removed it was granted to: {'; '.join(covered)}"))
    # By its slug when its name (kept from before names were checked) would not print as typed.
    again = shlex.quote(app.name) if app.name.isprintable() else app.slug
    click.echo(f"grant it again with `portal apps grant {again} ...`")
    if app.kind is AppKind.oidc:
        click.echo("its OpenID client secret works again: if it may have leaked, run "
                   f"`portal apps new-secret {shlex.quote(app.name)}`")


@apps_cli.command("add-link")
@click.argument("name")
@click.argument("url")
@click.option("--icon", default="", help="a square PNG, JPEG, GIF, WebP or SVG file (at most 64 KB)")
@with_appcontext
def apps_add_link(name, url, icon):
    """Add an app that opens by link."""
    from portal.admin.services import add_link_app
    from portal.db import db
    app = _admin_call(add_link_app, db.session, name, url, icon)
    click.echo(f"added {app.name} ({app.slug})")


def _group_options(command):
    """The options that name a group of people (a grant): every option given must hold."""
    for option in reversed((
        click.option("--district", is_flag=True, help="everyone in the district"),
        click.option("--school", help="school sourcedId"),
        click.option("--grade", help="grade, as in the roster (KG, 01, ...)"),
        click.option("--section", help="section (class) sourcedId"),
        click.option("--role", help="student, teacher, school_admin or district_admin"),
    )):
        command = option(command)
    return command


@apps_cli.command("grant")
@click.argument("name")
@_group_options
@with_appcontext
def apps_grant(name, district, school, grade, section, role):
    """Let a group launch an app. Every option given must hold."""
    from portal.admin.services import grant_app
    from portal.db import db
    grant = _admin_call(grant_app, db.session, name, district=district, school=school,
                        grade=grade, section=section, role=role)
    click.echo(shown(f"granted {grant.app.name} to: {grant.describe()}"))


@apps_cli.command("ungrant")
@click.argument("name")
@_group_options
@with_appcontext
def apps_ungrant(name, district, school, grade, section, role):
    """Remove the grant naming exactly these options (as `portal apps list` shows them)."""
    from portal.admin.services import remove_grant
    from portal.db import db
    covered = _admin_call(remove_grant, db.session, name, district=district, school=school,
                          grade=grade, section=section, role=role)
    click.echo(shown(f"{name} is no longer granted to: {covered}"))


@apps_cli.command("release")
@click.argument("name")
@click.argument("fields", nargs=-1, required=True)
@with_appcontext
def apps_release(name, fields):
    """Set the fields an app receives (replaces the list; the subject is always sent)."""
    from portal.admin.services import release_fields
    from portal.db import db
    app = _admin_call(release_fields, db.session, name, list(fields))
    click.echo(f"{shown(app.name)} receives: subject, {', '.join(app.released_fields) or 'nothing else'}")


@main.command("dev")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--students", type=click.IntRange(min=20, max=MAX_DEMO_STUDENTS), default=300,
              show_default=True, help="size of the demo district")
def dev(port, students):
    """Serve the portal on 127.0.0.1 with a demo district (what `make run` does)."""
    import fcntl

    from portal.config import DEFAULT_INSTANCE, DEV_REDIS_FILE, private_folder
    from portal.devserver import RedisProcess, port_is_free

    if os.environ.get("PORTAL_ENV", "").strip() == "production":
        # It loads a demo district, with the sign-ins the README publishes, into an empty database.
        fail("portal dev serves a development portal with a demo district; it does not run with "
             "PORTAL_ENV=production: serve production with gunicorn (see README.md)")
    if not port_is_free(port):
        # Before anything starts: found later, the demo app and Redis would have started for nothing.
        fail(f"port {port} on 127.0.0.1 is in use by another program: stop it, or choose "
             f"another port (make run PORT=5050, or portal dev --port 5050)")
    instance = Path(os.environ.get("PORTAL_INSTANCE_PATH") or DEFAULT_INSTANCE).resolve()
    try:
        private_folder(instance)
        lock = open(instance / "dev.lock", "a")
    except OSError as e:
        fail(f"can't use the instance folder {instance}: {e.strerror}")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fail(f"another `portal dev` (make run) is serving {instance} already: use that one, or "
             f"stop it first (two would share its Redis data and its demo app)")
    redis_proc = demo_app = None
    url_file = instance / DEV_REDIS_FILE
    url_file.unlink(missing_ok=True)   # left by a run killed outright: it names a Redis long gone
    # `kill` (SIGTERM) stops everything as Ctrl-C does: the finally below runs either way.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not os.environ.get("PORTAL_REDIS_URL"):
        redis_proc = RedisProcess(instance / "redis", persist=True).start()
        os.environ["PORTAL_REDIS_URL"] = redis_proc.url
        # For `portal` commands in another terminal while this runs (portal.config reads it).
        url_file.write_text(redis_proc.url + "\n")
        click.echo(f"started redis-server on 127.0.0.1:{redis_proc.port} (data in {instance / 'redis'}; "
                   f"`.venv/bin/portal ...` in another terminal uses it while this runs)")
    try:
        app = _create_app()
        with app.app_context():
            from portal.db import db
            from portal.migrate import upgrade
            from portal.models import Person
            from portal.roster.demo import add_demo_badge, load_demo, renew_demo_badge
            upgrade(db.engine)
            settings = app.config["SETTINGS"]
            badge_file = Path(settings.instance_path) / "demo-badge.pdf"
            # Badges end as the district's do (PORTAL_BADGE_EXPIRES, PORTAL_TIMEZONE).
            ends = {"default_expires": settings.badge_expires, "zone": settings.zone}
            if not db.session.scalar(select(func.count(Person.id))):
                click.echo("loading the demo district ...")
                load_demo(db.session, students=students)
                badge = add_demo_badge(db.session, app.extensions["redis"], badge_file, **ends)
                click.echo(f"a badge for demo.student: {badge} (hold it up to http://127.0.0.1:{port}/badge)")
            elif renew_demo_badge(db.session, app.extensions["redis"], badge_file, **ends):
                # The README's demo badge ends with the school year: from then on, a new one.
                click.echo(f"a new badge for demo.student: {badge_file}, as the one there no longer "
                           f"worked (hold it up to http://127.0.0.1:{port}/badge)")
        demo_app = _start_demo_app(app, port)
        click.echo(f"portal: http://127.0.0.1:{port}/  (demo sign-ins are in README.md)")
        # Request lines carry hand-off tokens in paths and ID tokens in logout addresses.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # Not app.run(): inside a `flask`-style command it returns at once without serving.
        from werkzeug.serving import run_simple
        run_simple("127.0.0.1", port, app, threaded=True, use_reloader=False)
    finally:
        if demo_app:
            demo_app.stop()
        url_file.unlink(missing_ok=True)
        if redis_proc:
            redis_proc.stop()
        lock.close()


def _start_demo_app(app, port: int):
    """Register the demo learning app (examples/demo_app) and run it beside the portal."""
    from portal.config import ROOT
    if not (ROOT / "examples" / "demo_app").is_dir():
        return None
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # examples/ sits beside the package; it is not installed
    from examples.demo_app.launcher import start_beside_portal
    from portal.roster.demo import ELEMENTARY
    return start_beside_portal(app, portal_url=f"http://127.0.0.1:{port}", school=ELEMENTARY,
                               echo=click.echo)


@click.group("audit")
def audit_cli():
    """The audit log: sign-ins, changes, and what apps received."""


@audit_cli.command("purge")
@click.option("--older-than", "days", type=click.IntRange(min=1, max=36500), required=True,
              metavar="DAYS", help="delete events older than this many days")
@with_appcontext
def audit_purge(days):
    """Delete audit events older than DAYS days (run it from cron to keep the log short). The
    records of what each app received stay as long as the person is on the roster."""
    from portal.audit import purge_older_than
    # Deleted in committed batches: on a terminal, how far it has got (what a ^C leaves deleted;
    # run again, it deletes the rest).
    shown = []

    def progress(so_far: int) -> None:
        shown.append(so_far)
        click.echo(f"\rdeleted {so_far} so far", nl=False, err=True)
    gone = purge_older_than(days, progress if sys.stderr.isatty() else None)
    if shown:
        click.echo(err=True)
    click.echo(f"deleted {gone} audit event{'' if gone == 1 else 's'} older than {days} days; "
               "the records of what apps received stay while the person is on the roster")


@click.group("sessions")
def sessions_cli():
    """Sign-in sessions."""


@sessions_cli.command("sweep")
@with_appcontext
def sessions_sweep():
    """Tell the apps of sessions that timed out idle that they ended (run it from cron every
    few minutes: a session that times out tells no one when it happens)."""
    from portal.sessions import sweep_ended_sessions
    from portal.sso.oidc.backchannel import wait_for_deliveries
    try:
        told = sweep_ended_sessions(current_app.extensions["redis"])
    except redis.RedisError as e:
        if refused_password(e):
            fail(f"{REFUSED_PASSWORD}: set the password Redis expects there and run this again")
        fail(f"cannot reach Redis: {type(e).__name__}")
    wait_for_deliveries(30)
    click.echo(f"{told} session{'' if told == 1 else 's'} had timed out: their apps were told")


@click.group("deletions")
def deletions_cli():
    """Asking apps to delete what they received about a student."""


def _echo_request(r, ids_read=None, since=None) -> None:
    """The request, and how its vendor finds the student (of `ids_read`: what
    deletions.received_ids read for a list of requests, this one's among them), and what the app
    received after it (of `since`: what deletions.released_since read for the list; else read here)."""
    from portal.admin.deletions import identifiers, released_since
    from portal.db import db
    state = "waiting for the vendor" if r.is_open else f"deleted, confirmed {local(r.done_at):%Y-%m-%d}"
    click.echo(f"request {r.id}\t{shown(r.app_name)}\tasked {local(r.asked_at):%Y-%m-%d}\t{state}")
    key = current_app.config["SETTINGS"].pairwise_key
    for label, value, note in identifiers(db.session, r, pairwise_key=key, ids_read=ids_read):
        click.echo("  " + shown(f"{label}: {value} ({note})" if value and note else f"{label}: {value or note}"))
    click.echo(f"  received: {', '.join(r.fields) or 'only the subject'} "
               f"({local(r.first_at):%Y-%m-%d} to {local(r.last_at):%Y-%m-%d})")
    after = (released_since(db.session, [r]) if since is None else since).get(r.id)
    if after is not None:
        times = f" ({after.times} times, the last on {local(after.last_at):%Y-%m-%d})" if after.times > 1 else ""
        covers = "the letter does not cover it yet" if r.is_open else "the vendor's confirmation does not cover it"
        click.echo(f"  received data about this student again on {local(after.first_at):%Y-%m-%d}, after "
                   f"this request{times}: {covers}")


@deletions_cli.command("ask")
@click.argument("username")
@click.argument("app_name", metavar="APP")
@with_appcontext
def deletions_ask(username, app_name):
    """Ask APP to delete what it received about USERNAME; prints what to send its vendor."""
    from portal.admin import deletions
    from portal.badges.flow import now
    from portal.db import db
    from portal.models import AppKind
    person, app = _person_and_app(username, app_name, removed=True)   # a removed app's vendor too
    request, created = _admin_call(deletions.ask_deletion, db.session, current_app.extensions["redis"], person,
                                   app, actor=None, pairwise_key=current_app.config["SETTINGS"].pairwise_key,
                                   now=now())
    if not created:
        click.echo(f"{shown(app.name)} was already asked on {local(request.asked_at):%Y-%m-%d}; brought up to date")
    _echo_request(request)
    if app.kind is AppKind.oidc and app.removed_at is None:
        click.echo(f"{shown(app.name)}'s sign-ins for {person.username} have ended: nothing it was given before can "
                   "read their data again")


@deletions_cli.command("list")
@click.option("--open", "open_only", is_flag=True, help="only those still waiting for the vendor")
@with_appcontext
def deletions_list(open_only):
    """List deletion requests, those waiting for the vendor first."""
    from portal.admin import deletions
    from portal.db import db
    # Every one (and those whose district the roster has removed since), read and printed a batch
    # at a time: each batch's people and apps with it, and their release records in one statement.
    listed = False
    for batch in deletions.every_request(db.session, open_only=open_only):
        ids_read = deletions.received_ids(db.session, {pair for r in batch
                                                      if (pair := deletions.wants_received(r)) is not None})
        since = deletions.released_since(db.session, batch)
        for r in batch:
            _echo_request(r, ids_read, since)
        listed = True
    if not listed:
        click.echo("no deletion requests" + (" waiting" if open_only else ""))


@deletions_cli.command("done")
@click.argument("request_id", type=int, metavar="ID")
@click.option("--note", default="", help="the vendor's answer: a ticket number, who confirmed")
@with_appcontext
def deletions_done(request_id, note):
    """Record that the vendor confirmed deletion request ID."""
    from portal.admin import deletions
    from portal.badges.flow import now
    from portal.db import db
    from portal.models import DeletionRequest
    request = db.session.get(DeletionRequest, request_id) if 0 < request_id < 2**63 else None
    if request is None:
        fail(f"there is no deletion request {request_id} (see `portal deletions list`)")
    _admin_call(deletions.confirm_deletion, db.session, request, actor=None, note=note, now=now())
    if deletions.released_since(db.session, [request]):
        click.echo(f"recorded: {shown(request.app_name)} deleted what the letter covers (request {request.id}); it "
                   "received data about this student again after the request, which this does not cover: "
                   f"see `portal deletions list`")
    else:
        click.echo(f"recorded: {shown(request.app_name)} deleted what it received (request {request.id})")


def register_commands(app):
    """Attach the command groups to an app (used by create_app)."""
    import portal.sso.saml.cli  # noqa: F401  (adds `apps add-saml`)
    from portal.sso.oidc.cli import keys_cli  # also adds `apps add-oidc`
    app.cli.add_command(keys_cli)
    from portal.roster.cli import demo_cli, roster_cli
    for group in (db_cli, users_cli, apps_cli, roster_cli, demo_cli, audit_cli, deletions_cli, sessions_cli):
        app.cli.add_command(group)
    from portal.badges.cli import badges_cli, kiosk_cli
    app.cli.add_command(badges_cli)
    app.cli.add_command(kiosk_cli)
