"""Serve a test server from a thread on 127.0.0.1 for as long as a `with` block lasts."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler


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


class PageHandler(BaseHTTPRequestHandler):
    """A test web site's request handler: `page` answers with a small HTML page; no request lines."""

    title = "App"

    def page(self, status: int, body: str) -> None:
        data = f"<!doctype html><title>{self.title}</title>{body}".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # keep test output quiet
        pass
