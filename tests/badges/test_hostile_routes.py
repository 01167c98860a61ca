"""Every route of the portal, given hostile values in its path, its query and its JSON or form
body, by a signed-in teacher, district admin and student, by a stranger and by an enrolled
kiosk: plain refusals, never a 500.

The values are those that broke something once: digits of another script, a number past what
the database holds, text longer than a column, a NUL, characters that mean something in HTML,
SQL or a path."""
from __future__ import annotations

import re
from collections import Counter
from urllib.parse import quote

from tests.badges.conftest import login, new_client

HOSTILE = ["\u00b2", "\u0663", "9" * 19, "x" * 300, "\x00", "%", "..", "<script>", "'", "-1", "0", " "]
FIELDS = ("school", "name", "code", "token", "reason", "hours", "paper", "pin", "next", "client_id")
# The routes that end the caller's sign-in: the signed-in callers must stay signed in throughout.
SIGN_OUT = {"auth.logout", "oidc.end_session", "oidc.confirm_end_session"}


def test_no_route_answers_a_hostile_value_with_a_500(app, redis_client, world, kiosk):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    signed_in = {who: new_client(app) for who in ("t.four", "district", "ada")}
    callers = {who: (client, login(client, who)) for who, client in signed_in.items()}
    callers |= {"stranger": (new_client(app), ""), "kiosk": (kiosk.api, "")}
    failures, answers = [], Counter()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for value in HOSTILE:
            # Written into the address as a browser would send it, whatever the route's
            # converters think of it (url_for would refuse to build most of these).
            path = re.sub(r"<[^>]+>", quote(value, safe=""), rule.rule)
            fields = dict.fromkeys(FIELDS, value)
            for who, (client, csrf) in callers.items():
                if who in signed_in and rule.endpoint in SIGN_OUT:
                    continue
                headers = {"X-CSRFToken": csrf} if csrf else kiosk.headers if who == "kiosk" else {}
                for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                    if method == "GET":
                        tries = [client.get(path, query_string=fields)]
                    else:
                        tries = [client.open(path, method=method, json=fields,
                                             headers={**headers, "Accept": "application/json"}),
                                 client.open(path, method=method, data={**fields, "csrf_token": csrf},
                                             headers=headers)]
                    for answer in tries:
                        answers[answer.status_code] += 1
                        if answer.status_code == 500:
                            failures.append(f"{who} {method} {path!r} with {value!r}")
    assert sum(answers.values()) > 3000, answers     # every route was reached, many times
    assert failures == []
    for client in signed_in.values():               # and the signed-in tries were signed in
        assert client.get("/").status_code == 200
