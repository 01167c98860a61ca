"""gunicorn serving portal.wsgi:app: a setting that is missing or wrong is one line and a stop."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.serving import ROOT, stop_process_group, wait_until_up
from portal.devserver import free_port


def _gunicorn(entry: str, env: dict, port: int, workers: int = 2) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
                             "--log-level", "warning", entry],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _settings(**portal: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    return env | {f"PORTAL_{k}": v for k, v in portal.items()}


def test_a_wrong_setting_stops_gunicorn_with_one_line(tmp_path):
    # Found by the deployment walkthrough: under gunicorn a ConfigError was a 37-line traceback
    # ending "Worker failed to boot", where the `portal` command says one line.
    env = _settings(ENV="development", INSTANCE_PATH=str(tmp_path / "instance"), SESSION_IDLE_MINUTES="0")
    # One worker: with several, each stops with status 4 at once, and gunicorn 23, stopping for
    # the first, may meet the next one's in the middle and add a traceback of its own (its exit
    # status then 1), after this line (CI's PostgreSQL run at 946bd4f met it).
    proc = _gunicorn("portal.wsgi:app", env, free_port(), workers=1)
    try:
        output, _ = proc.communicate(timeout=60)
    finally:
        stop_process_group(proc)
    assert proc.returncode == 4, output
    assert "portal: PORTAL_SESSION_IDLE_MINUTES must be between 1 and 10080, not 0\n" in output
    assert "App failed to load" in output and "Traceback" not in output


@pytest.mark.parametrize("entry", ["portal.wsgi:app", "portal:create_app()"])
def test_gunicorn_serves_the_portal(settings, tmp_path, entry):
    port = free_port()
    env = _settings(ENV="development", INSTANCE_PATH=str(tmp_path / "instance"),
                    DATABASE_URL=settings.database_url, REDIS_URL=settings.redis_url)
    proc = _gunicorn(entry, env, port)
    try:
        wait_until_up(port, proc, timeout=60)
    finally:
        stop_process_group(proc)
