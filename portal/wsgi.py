"""The portal for a WSGI server: `gunicorn portal.wsgi:app`.

A setting that is missing or wrong is one line on standard error, `portal: <what to do>`, and exit
status 4, which gunicorn takes for an app that cannot load: it stops, saying "App failed to load",
rather than print a traceback and start the workers again and again ("Worker failed to boot").
`portal:create_app()` still works, with the traceback.
"""
from __future__ import annotations

import sys

from portal import create_app
from portal.config import ConfigError

APP_LOAD_ERROR = 4      # gunicorn's Arbiter.APP_LOAD_ERROR

try:
    app = create_app()
except ConfigError as e:
    print(f"portal: {e}", file=sys.stderr, flush=True)
    sys.exit(APP_LOAD_ERROR)
