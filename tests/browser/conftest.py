"""Browser fixtures: a page per test, and a tiny local web site for link apps to open (nothing
leaves the machine). The live portal and the shared Chromium are in tests/conftest.py."""
from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.serving import served


class _AppSite(BaseHTTPRequestHandler):
    def do_GET(self):
        body = (f"<!doctype html><title>Story Time</title><h1>Welcome to Story Time</h1>"
                f"<p id='path'>{self.path}</p>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def link_site():
    """A tiny web site on 127.0.0.1 standing in for a link app; yields its base URL."""
    with served(ThreadingHTTPServer(("127.0.0.1", 0), _AppSite), "link-site") as url:
        yield url


@pytest.fixture
def viewport():
    return {"width": 1024, "height": 768}


@pytest.fixture
def page(browser, viewport):
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()
