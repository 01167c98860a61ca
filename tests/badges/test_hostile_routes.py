"""Every route of the portal, given hostile values in its path, its query and its JSON body, by a
signed-in teacher, by a stranger and by an enrolled kiosk: plain refusals, never a 500.

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
# The routes that end the caller's sign-in: the teacher must stay signed in throughout.
SIGN_OUT = {"auth.logout", "oidc.end_session", "oidc.confirm_end_session"}


def test_no_route_answers_a_hostile_value_with_a_500(app, redis_client, world, kiosk):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    teacher = new_client(app)
    csrf = login(teacher, "t.four")
    callers = {"teacher": (teacher, {"X-CSRFToken": csrf}), "stranger": (new_client(app), {}),
               "kiosk": (kiosk.api, kiosk.headers)}
    failures, answers = [], Counter()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for value in HOSTILE:
            # Written into the address as a browser would send it, whatever the route's
            # converters think of it (url_for would refuse to build most of these).
            path = re.sub(r"<[^>]+>", quote(value, safe=""), rule.rule)
            for who, (client, headers) in callers.items():
                if who == "teacher" and rule.endpoint in SIGN_OUT:
                    continue
                for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                    if method == "GET":
                        answer = client.get(path, query_string=dict.fromkeys(FIELDS, value))
                    else:
                        answer = client.open(path, method=method, json=dict.fromkeys(FIELDS, value),
                                             headers={**headers, "Accept": "application/json"})
                    answers[answer.status_code] += 1
                    if answer.status_code == 500:
                        failures.append(f"{who} {method} {path!r} with {value!r}")
    assert sum(answers.values()) > 1000, answers     # every route was reached, many times
    assert failures == []
    assert teacher.get("/").status_code == 200      # and the teacher's tries were signed in
