"""`portal roster import PATH` and `portal demo [--students N]`."""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from portal.roster.demo import MAX_DEMO_STUDENTS
from portal.roster.problems import RosterError

STAGES = {"reading": "reading the roster", "checking": "checking", "writing": "writing"}


class TerminalProgress:
    """A progress bar per stage on standard error, only when that is a terminal."""

    def __init__(self):
        self.stage = None
        self.bar = None

    @classmethod
    def maybe(cls) -> "TerminalProgress | None":
        return cls() if sys.stderr.isatty() else None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = click.progressbar(length=total, label=STAGES.get(stage, stage).ljust(18),
                                         file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _import_and_report(run_import, headline: str) -> None:
    """Run an import with a progress bar on a terminal; print its summary, or refuse plainly."""
    progress = TerminalProgress.maybe()
    try:
        summary = run_import(progress)
    except RosterError as e:
        raise click.ClickException("the roster was not imported; nothing changed:\n  "
                                   + "\n  ".join(e.problems)) from None
    finally:
        if progress:
            progress.close()
    click.echo(headline)
    for line in summary.lines():
        click.echo(line)


@click.group("roster")
def roster_cli():
    """The roster: OneRoster 1.1 CSV imports."""


@roster_cli.command("import")
@click.argument("path", type=click.Path(path_type=str))
@click.option("--allow-removals", is_flag=True,
              help="remove what the bundle says even when that is more than a quarter of the "
                   "people, or people on security hold or with an open deletion request")
@with_appcontext
def roster_import(path, allow_removals):
    """Import a OneRoster 1.1 CSV bundle (a folder or a .zip).

    Every row is checked first; a bundle with a problem is refused whole. The users.csv
    password column is ignored: the portal sets passwords itself. An import that would remove
    more than a quarter of the people (a cut-off export looks like that), or anyone on security
    hold or with a deletion request the vendor has not confirmed, is refused unless
    --allow-removals. Someone whose sourcedId changed (a new row with their username and role)
    is kept, not removed and added.
    """
    from portal.db import db
    from portal.roster.importer import import_roster

    _import_and_report(lambda progress: import_roster(
        db.session, path, progress=progress, redis_client=current_app.extensions["redis"],
        allow_removals=allow_removals), f"imported {path}")


@click.command("demo")
@click.option("--students", type=click.IntRange(min=20, max=MAX_DEMO_STUDENTS), default=300,
              show_default=True,
              help="how many students the demo district has")
@click.option("--yes-in-production", is_flag=True,
              help="load it even under PORTAL_ENV=production (its sign-ins' passwords are public)")
@with_appcontext
def demo_cli(students, yes_in_production):
    """Generate and import the demo district (safe to repeat)."""
    from portal.db import db
    from portal.migrate import upgrade
    from portal.roster.demo import DEMO_ACCOUNTS, load_demo

    # Its district admin, teacher and student sign in with the passwords the README publishes:
    # loaded into a real district by a slip, they are anyone's way in.
    if current_app.config["SETTINGS"].production and not yes_in_production:
        raise click.ClickException(
            "PORTAL_ENV is production and the demo's sign-ins (a district admin among them) have "
            "published passwords: nothing loaded (--yes-in-production if this portal is a demo)")
    upgrade(db.engine)
    _import_and_report(lambda progress: load_demo(db.session, students=students, progress=progress),
                       f"demo district loaded ({students} students)")
    click.echo("demo sign-ins:")
    for account in DEMO_ACCOUNTS:
        click.echo(f"  {account.username}  {account.password}")
