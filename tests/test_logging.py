"""The portal's log lines say when, how bad and where, from INFO, under gunicorn and anywhere else
nothing configured logging. Found by the deployment review: under gunicorn they came out bare
(Python's last-resort handler, WARNING and up) and INFO lines were dropped."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from portal.config import ROOT

LINE = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO portal\.health: hello"

# Two apps (gunicorn's workers each make one; a second must not double the lines), then a line.
TWO_APPS = """
import logging, sys
from portal import create_app
create_app(); create_app()
logging.getLogger("portal.health").info("hello")
"""

UNDER_GUNICORN = """
import logging, sys
from gunicorn.config import Config
from gunicorn.glogging import Logger
config = Config()
config.set("errorlog", sys.argv[1])
server = Logger(config)       # what gunicorn's arbiter sets up: gunicorn.error to --error-logfile
from portal import create_app
create_app()
server.info("gunicorn's own")
logging.getLogger("portal.health").info("hello")
logging.getLogger("portal.health").debug("not at gunicorn's --log-level info")
server.reopen_files()         # what USR1 does, for log rotation
logging.getLogger("portal.health").info("hello")
"""


def _run(script, tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(PORTAL_INSTANCE_PATH=str(tmp_path / "instance"), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_lines_have_time_level_and_logger_once(tmp_path):
    done = _run(TWO_APPS, tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(re.findall(rf"^{LINE}$", done.stderr, re.M)) == 1, done.stderr
    assert len(re.findall(r"^\S+ \S+ WARNING portal: PORTAL_ENV is not production", done.stderr, re.M)) == 2


def test_under_gunicorn_they_go_to_its_error_log(tmp_path):
    log = tmp_path / "error.log"
    done = _run(UNDER_GUNICORN, tmp_path, str(log))
    assert done.returncode == 0, done.stderr
    assert "hello" not in done.stderr
    written = log.read_text()
    assert len(re.findall(rf"^{LINE}$", written, re.M)) == 2, written
    assert re.search(r"^\[\S+ \S+ \S+\] \[\d+\] \[INFO\] gunicorn's own$", written, re.M), written
    assert "not at gunicorn's" not in written


def test_records_still_reach_pytest(app, caplog):
    import logging
    with caplog.at_level("INFO"):
        logging.getLogger("portal.health").info("hello")
    assert [r.getMessage() for r in caplog.records] == ["hello"]
    assert not logging.getLogger("portal").handlers
