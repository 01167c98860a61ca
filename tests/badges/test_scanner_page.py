"""/badge, the in-browser scanner page: shown where the school allows it, otherwise a plain
pointer to the classroom kiosk; its scripts come from the portal itself, none inline."""
from __future__ import annotations

import json
import re
from pathlib import Path

from portal.badges.policy import set_policy
from portal.db import db
from tests.badges.conftest import issue, new_client


def test_school_without_the_browser_scanner_points_to_the_kiosk(app, world):
    page = new_client(app).get("/badge?school=maple")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "This school uses the classroom kiosk" in html
    assert "badge-scanner.js" not in html and "<video" not in html


def test_without_a_school_the_page_opens_only_where_some_school_allows_it(app, world):
    client = new_client(app)
    assert "This school uses the classroom kiosk" in client.get("/badge").get_data(as_text=True)
    set_policy(db.session, world.other_school, allow_browser_scanner=True)
    assert "badge-scanner.js" in client.get("/badge").get_data(as_text=True)


def test_unknown_school_says_so(app, world):
    page = new_client(app).get("/badge?school=nowhere")
    assert page.status_code == 404
    assert "find that school" in page.get_data(as_text=True)


def test_scanner_page_loads_local_scripts_and_gives_a_csrf_token_that_works(app, redis_client,
                                                                           world):
    set_policy(db.session, world.school, allow_browser_scanner=True)
    browser = new_client(app)
    page = browser.get("/badge?school=maple")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Getting the camera ready" in html
    assert page.headers["Permissions-Policy"] == "camera=(self), microphone=()"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all(body.strip() == "" for _, body in scripts)  # nothing inline
    sources = [re.search(r'src="([^"]+)"', attrs).group(1) for attrs, _ in scripts]
    assert sources == ["/static/js/vendor/jsQR.js", "/static/js/badge-finders.js",
                       "/static/js/badge-scanner.js"]
    for src in sources:
        assert browser.get(src).status_code == 200
    assert not re.search(r"\sstyle=|\son[a-z]+=", html)  # no inline styles or handlers
    csrf = re.search(r'data-csrf="([^"]+)"', html).group(1)
    assert re.search(r'data-scan-url="/badge/scan"', html)
    answer = browser.post("/badge/scan", json={"token": issue(redis_client, world.student)},
                          headers={"X-CSRFToken": csrf})
    assert answer.status_code == 200 and answer.json == {"next": "/badges/home"}


def test_vendored_decoder_is_the_locked_npm_package_and_needs_no_eval():
    root = Path(__file__).resolve().parents[2]
    lock = json.loads((root / "package-lock.json").read_text())
    package = json.loads((root / "package.json").read_text())
    assert lock["packages"]["node_modules/jsqr"]["version"] == package["dependencies"]["jsqr"]
    vendored = (root / "static/js/vendor/jsQR.js").read_bytes()
    assert vendored.startswith(b"(function webpackUniversalModuleDefinition")
    assert b"eval(" not in vendored and b"new Function" not in vendored  # CSP allows neither
    assert "Apache License" in (root / "static/js/vendor/jsQR.LICENSE").read_text()
