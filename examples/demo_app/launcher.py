"""Run the demo app beside `portal dev`: register it in the portal, then start it as a process.

Nothing here may stop the portal: when the demo app cannot run, we say why and carry on.
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from examples.demo_app.register import register_demo_apps
from portal.devserver import port_is_free, stop_process

DEMO_PORT = 5001
CREDENTIALS_FILE = "demo_app.json"
ROOT = Path(__file__).resolve().parents[2]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class DemoAppProcess:
    """The demo app's process, started by start_beside_portal."""

    def __init__(self, proc: subprocess.Popen, url: str):
        self.proc, self.url = proc, url

    def stop(self) -> None:
        stop_process(self.proc)


def register_in(flask_app, base_url: str, *, school: str | None, echo=print):
    """Register both demo apps in the portal `flask_app`; return the credentials file, or None."""
    from portal.admin.services import AdminError
    from portal.db import db
    from portal.models import School
    from sqlalchemy import select

    path = Path(flask_app.config["SETTINGS"].instance_path) / CREDENTIALS_FILE
    with flask_app.app_context():
        if school and db.session.scalar(select(School.id).where(School.sourced_id == school)) is None:
            echo(f"demo app: there is no school {school}, so its tiles are granted to nobody")
            school = None
        try:
            register_demo_apps(db.session, base_url, credentials_path=path, school=school)
        except AdminError as e:
            db.session.rollback()
            echo(f"demo app: not registered ({e}); the portal runs without it")
            return None
    return path


def start_beside_portal(flask_app, *, portal_url: str, port: int = DEMO_PORT,
                        school: str | None = None, echo=print,
                        timeout: float = 15.0) -> DemoAppProcess | None:
    """Register the demo app and start it on 127.0.0.1:`port`; None (and why) when it can't run."""
    base_url = f"http://127.0.0.1:{port}"
    credentials = register_in(flask_app, base_url, school=school, echo=echo)
    if credentials is None:
        return None
    if not port_is_free(port):
        echo(f"demo app: port {port} is taken by another program, so the demo app is not running; "
             f"the portal runs without it (free port {port} and run `make run` again)")
        return None
    proc = subprocess.Popen(
        [sys.executable, "-m", "examples.demo_app", "--portal", portal_url, "--port", str(port),
         "--credentials", str(credentials), "--exit-with-parent"],
        cwd=ROOT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            echo(f"demo app: it stopped at start (exit status {proc.returncode}); the portal runs without it")
            return None
        if _listening(port):
            echo(f"demo app: {base_url}/ (sign in to the portal as demo.student and click a Demo tile)")
            return DemoAppProcess(proc, base_url)
        time.sleep(0.1)
    echo(f"demo app: it did not start listening within {timeout:.0f} s; the portal runs without it")
    DemoAppProcess(proc, base_url).stop()
    return None
