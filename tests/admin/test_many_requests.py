"""Deletion requests by the hundred: the list page and an app's page read each request's person and
app with it (not one statement each), a page at a time with "Older requests" to the end; and
`portal deletions list` reads every request and the release records behind its letter in a few
statements, whatever their number."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from portal.admin import deletions
from portal.models import DeletionRequest, Event
from tests.admin.helpers import cli
from tests.admin.test_shared_pages import _client, _text, shared  # noqa: F401  (the fixture)
from tests.statements import statements

START = datetime(2025, 9, 1, 8, tzinfo=timezone.utc)


def _students_asked(app, roster, shared, n, *, first=0, launched=True):
    """`n` more students, each had a request made about Reading Garden: every third one still
    open. `launched`: each launched it (which recorded their username's hash); else their launches
    are long gone (as on an app's page, whose latest releases are about others)."""
    from portal.access import identifier_hash
    from portal.db import db
    saml, key = shared["saml"], app.config["SETTINGS"].pairwise_key
    made = []
    for i in range(first, first + n):
        person = roster.person(f"kid{i:03d}", given=f"Kid{i:03d}", family="Many", password=None)
        if launched:
            db.session.execute(Event.__table__.insert(), [{
                "at": START + timedelta(minutes=i), "kind": "launch", "person_id": person.id, "app_id": saml.id,
                "actor_id": None, "data": {"protocol": "saml", "fields": ["subject", "username"],
                                           "ids": {"username": identifier_hash(key, "username", person.username)}}}])
        db.session.add(DeletionRequest(
            district_id=person.district_id, person_id=person.id, app_id=saml.id, app_name=saml.name,
            protocol="saml", subject=f"subject-{i}", fields=["subject", "username"], first_at=START,
            last_at=START, asked_at=START + timedelta(hours=i), done_at=None if i % 3 == 0 else START + timedelta(days=400),
            done_note=""))
        made.append(person)
    db.session.commit()
    return made


def _page_statements(app, client, path) -> tuple[int, str]:
    from portal.db import db
    client.get(path)                    # warm: what the first request of a session reads once
    with statements(db.engine) as found:
        page = client.get(path)
    assert page.status_code == 200, page.status_code
    return len(found), _text(page)


@pytest.mark.parametrize("path", ["/admin/deletions", "/admin/apps/{slug}"])
def test_a_list_of_requests_reads_as_many_statements_for_5_or_50(app, roster, shared, path):
    admin = _client(app, "dee.admin")
    path = path.format(slug=shared["saml"].slug)
    counts = []
    for n, first in ((5, 0), (45, 5)):
        _students_asked(app, roster, shared, n, first=first, launched=False)
        count, text = _page_statements(app, admin, path)
        assert all(f"Kid{i:03d} Many" in text for i in range(first + n)), text
        counts.append(count)
    assert counts[0] == counts[1], counts          # was 5 + 5 and 5 + 50 (one per person)


def test_the_command_line_lists_5_or_50_requests_in_as_many_statements(app, roster, shared, runner):
    from portal.db import db
    counts, outs = [], []
    for n, first in ((5, 0), (45, 5)):
        _students_asked(app, roster, shared, n, first=first)
        with statements(db.engine) as found:
            out = cli(runner, "deletions", "list")
        counts.append(len(found))
        outs.append(out)
    assert counts[0] == counts[1], counts          # was 2 + 2 per request
    # Every request, and each letter's username shown as received: the hashes were read for it.
    for i in range(50):
        assert f"portal username: kid{i:03d}\n" in outs[1], outs[1]
    assert len(re.findall(r"^request \d+\t", outs[1], re.M)) == 50
    # Open ones first, newest first, as before.
    listed = [int(x) for x in re.findall(r"^request (\d+)\t", outs[1], re.M)]
    with app.app_context():
        rows = {r.id: r for r in db.session.query(DeletionRequest)}
    keys = [(rows[i].done_at is not None, -rows[i].asked_at.timestamp(), -i) for i in listed]
    assert keys == sorted(keys)
    # The same letter as the request's own page reads alone.
    key = app.config["SETTINGS"].pairwise_key
    with app.app_context():
        for request_id in (listed[0], listed[-1]):
            one = db.session.get(DeletionRequest, request_id)
            for label, value, note in deletions.identifiers(db.session, one, pairwise_key=key):
                assert f"  {label}: {value or note}" in outs[1]


def _walk(client, path) -> tuple[list[int], list[str]]:
    """Follow "Older requests" from `path` to the end: the request ids in order, and the pages."""
    ids, pages = [], []
    while path:
        page = client.get(path)
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        pages.append(html)
        found = [int(x) for x in re.findall(r'<tr id="request-(\d+)">', html)]
        assert len(found) <= deletions.PAGE_SIZE
        ids += found
        older = re.search(r'<a href="([^"]+)" rel="next">Older requests', html)
        path = older.group(1).replace("&amp;", "&") if older else None
    return ids, pages


def _many_requests(shared, n) -> list[DeletionRequest]:
    """`n` requests to Reading Garden: Ada's and Grace's open ones, the rest done (about Ada, or a
    student no longer on the roster); asked at times shared by three at once, as a bulk job might."""
    from portal.db import db
    saml, ada, grace = shared["saml"], shared["ada"], shared["grace"]
    rows = []
    for i in range(n):
        person = ada if i % 2 else None
        is_open = i in (7, n - 3)
        rows.append(DeletionRequest(
            district_id=ada.district_id, person_id=(grace.id if i == 7 else ada.id) if is_open else
            (person.id if person else None), app_id=saml.id, app_name=saml.name, protocol="saml",
            subject=f"s{i}", fields=["subject"], first_at=START, last_at=START,
            asked_at=START + timedelta(hours=i // 3), done_at=None if is_open else START + timedelta(days=900),
            done_note=""))
    db.session.add_all(rows)
    db.session.commit()
    return rows


def _newest_first(rows) -> list[int]:
    return [r.id for r in sorted(rows, key=lambda r: (r.asked_at, r.id), reverse=True)]


def test_every_request_is_reached_a_page_at_a_time(app, shared):
    rows = _many_requests(shared, 2 * deletions.PAGE_SIZE + 7)
    admin = _client(app, "dee.admin")
    ids, pages = _walk(admin, "/admin/deletions")
    assert ids == _newest_first(rows)             # each once, newest first, ties by id
    assert len(pages) == 3 and "Older requests" not in pages[-1]
    # The ones waiting are said on every page, and one link away wherever they are in the list.
    assert all("2 requests waiting for the vendor" in _text_of(p) for p in pages)
    waiting, _ = _walk(admin, re.search(r'href="([^"]+)">Show only those waiting', pages[1]).group(1)
                       .replace("&amp;", "&"))
    assert waiting == _newest_first([r for r in rows if r.done_at is None])
    assert "Newest requests" in _text_of(pages[1]) and "Newest requests" not in _text_of(pages[0])


def test_an_apps_page_shows_the_newest_and_links_to_the_older(app, shared):
    rows = _many_requests(shared, deletions.PAGE_SIZE + 5)
    admin = _client(app, "dee.admin")
    page = admin.get(f"/admin/apps/{shared['saml'].slug}").get_data(as_text=True)
    shown = [int(x) for x in re.findall(r'Request (\d+)</a>', page)]
    assert shown == _newest_first(rows)[:deletions.PAGE_SIZE]
    assert "2 requests waiting for the vendor" in _text_of(page)
    older = re.search(r'<a href="([^"]+)" rel="next">Older requests to Reading Garden', page).group(1)
    ids, pages = _walk(admin, older.replace("&amp;", "&"))
    assert ids == _newest_first(rows)[deletions.PAGE_SIZE:]
    assert "Deletion requests to Reading Garden" in _text_of(pages[0])


def test_a_page_after_a_request_of_no_one_or_of_another_district_is_not_found(app, shared):
    from portal.db import db
    from portal.models import District
    _many_requests(shared, 3)
    other = db.session.query(District).filter_by(sourced_id="other-district").one()
    theirs = DeletionRequest(district_id=other.id, person_id=None, app_id=shared["saml"].id, app_name="X",
                             protocol="saml", subject="s", fields=[], first_at=START, last_at=START,
                             asked_at=START, done_note="")
    db.session.add(theirs)
    db.session.commit()
    admin = _client(app, "dee.admin")
    for before in (str(theirs.id), "0", "-4", "x", "9" * 30, ""):
        assert admin.get("/admin/deletions", query_string={"before": before}).status_code == 404, before
    assert admin.get("/admin/deletions?app=no-such-app").status_code == 404
    assert "Traceback" not in _text(admin.get("/admin/deletions?before=" + "9" * 30))


def _text_of(html: str) -> str:
    import html as html_module
    return re.sub(r"\s+", " ", html_module.unescape(re.sub(r"<[^>]+>", " ", html)))
