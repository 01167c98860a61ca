"""Serve a test server from a thread on 127.0.0.1 for as long as a `with` block lasts."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def served(server, name: str) -> Iterator[str]:
    """Run `server` (socketserver-like: serve_forever, shutdown) in a thread; yield its base URL."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
