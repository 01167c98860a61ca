"""`python -m examples.demo_app --portal URL --credentials FILE [--port 5001]` (run from the repository root).

FILE is the JSON written by register.py (mode 0600): the OIDC client id and secret.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from pathlib import Path

from werkzeug.serving import make_server

from examples.demo_app.app import create_app
from examples.demo_app.register import DemoCredentials


def _exit_with_parent(parent: int) -> None:
    # Started by `portal dev`: if it dies without stopping us (kill -9), do not linger on the port.
    while True:
        time.sleep(1)
        if os.getppid() != parent:
            os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.demo_app", description=__doc__.splitlines()[0])
    parser.add_argument("--portal", required=True, help="the portal's address, e.g. http://127.0.0.1:5000")
    parser.add_argument("--credentials", required=True, type=Path, help="JSON file with the OIDC client id and secret")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when the starting process ends")
    args = parser.parse_args(argv)

    credentials = DemoCredentials.read(args.credentials)
    if credentials is None:
        print(f"demo app: cannot read {args.credentials}; `portal dev` writes it", file=sys.stderr)
        return 2
    base_url = f"http://127.0.0.1:{args.port}"
    app = create_app(portal_url=args.portal, base_url=base_url, client_id=credentials.client_id,
                     client_secret=credentials.client_secret)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the portal's log is the one to read
    try:
        server = make_server("127.0.0.1", args.port, app, threaded=True)
    except OSError as e:
        print(f"demo app: cannot listen on 127.0.0.1:{args.port}: {e.strerror}", file=sys.stderr)
        return 3
    if args.exit_with_parent:
        threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
