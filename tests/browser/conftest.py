"""Browser fixtures: a page per test, and a tiny local web site for link apps to open (nothing
leaves the machine). The live portal and the shared Chromium are in tests/conftest.py."""
from __future__ import annotations

from http.server import ThreadingHTTPServer

import pytest

from tests.serving import PageHandler, served


class _AppSite(PageHandler):
    title = "Story Time"

    def do_GET(self):
        self.page(200, f"<h1>Welcome to Story Time</h1><p id='path'>{self.path}</p>")


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
