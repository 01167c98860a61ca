"""Serve a test server from a thread on 127.0.0.1 for as long as a `with` block lasts."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler


def start_serving(server, name: str) -> threading.Thread:
    """Run `server` (socketserver-like: serve_forever, shutdown) in a daemon thread. It looks for
    a shutdown every 50 ms: socketserver's default, 0.5 s, made each stop cost that much."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=name, daemon=True)
    thread.start()
    return thread


def stop_serving(server, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@contextmanager
def served(server, name: str) -> Iterator[str]:
    """Serve `server` from a thread (start_serving) for as long as the block lasts; yield its base URL."""
    thread = start_serving(server, name)
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        stop_serving(server, thread)


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
