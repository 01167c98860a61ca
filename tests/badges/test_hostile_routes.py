"""Every route of the portal, given hostile values in its path, its query and its JSON or form
body, by a signed-in teacher, district admin and student, by a stranger and by an enrolled
kiosk: plain refusals, never a 500.

The values are those that broke something once: digits of another script, a number past what
the database holds, text longer than a column, a NUL, characters that mean something in HTML,
SQL or a path."""
from __future__ import annotations

import json
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


def test_no_route_answers_a_json_body_that_is_not_an_object_with_a_500(app, redis_client, world, kiosk):
    # Found by review: a list, a string or a number where a route read fields with .get().
    app.config["PROPAGATE_EXCEPTIONS"] = False
    signed_in = {who: new_client(app) for who in ("t.four", "district", "ada")}
    callers = {who: (client, login(client, who)) for who, client in signed_in.items()}
    callers |= {"stranger": (new_client(app), ""), "kiosk": (kiosk.api, "")}
    failures, tried = [], 0
    # Last, the routes that end other people's sessions (the bell, a hold): they may end a caller's.
    ends_others = {"teacher.sign_out", "admin.hold"}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.endpoint in ends_others):
        if "POST" not in rule.methods:
            continue
        path = re.sub(r"<[^>]+>", "1", rule.rule)
        for body in ([1], "x", 5, None, [[{}]], True):
            for who, (client, csrf) in callers.items():
                if who in signed_in and rule.endpoint in SIGN_OUT:
                    continue
                headers = {"X-CSRFToken": csrf} if csrf else kiosk.headers if who == "kiosk" else {}
                answer = client.post(path, data=json.dumps(body), content_type="application/json",
                                     headers={**headers, "Accept": "application/json"})
                tried += 1
                if answer.status_code == 500:
                    failures.append(f"{who} POST {path!r} with {body!r}")
    assert tried > 300 and failures == []


def test_no_route_answers_a_hostile_cookie_or_authorization_with_a_500(app, world, kiosk):
    """The cookies the portal reads (session, kiosk device, destination, SAML request waiting)
    and the Authorization header, forged: every route answers without a 500."""
    from portal.auth.destination import COOKIE as DESTINATION
    from portal.badges.kiosk_views import DEVICE_COOKIE
    from portal.sso.saml.flows import PENDING_COOKIE
    app.config["PROPAGATE_EXCEPTIONS"] = False
    cookies = (app.config["SESSION_COOKIE_NAME"], DEVICE_COOKIE, DESTINATION, PENDING_COOKIE)
    values = [*HOSTILE, "a.b", "1.x", "1." + "k" * 43, "x" * 3000, "\u00e9", "..%2f"]
    authorizations = ["Basic %%%", "Basic ", "Basic YTpi", "Bearer ", "Bearer " + "x" * 3000,
                      "Bearer kd1_\u00e9", "Digest x"]
    failures, answers = [], Counter()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<[^>]+>", "1", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            tries = []
            for name in cookies:
                for value in values:
                    client = new_client(app)
                    for where in ("/", "/kiosk/"):
                        client.set_cookie(name, value, path=where)
                    tries.append((f"cookie {name}={value[:20]!r}", client, {}))
            tries += [(f"Authorization {value[:20]!r}", new_client(app), {"Authorization": value})
                      for value in authorizations]
            for what, client, headers in tries:
                answer = client.open(path, method=method, json={"token": "x"}, headers=headers)
                answers[answer.status_code] += 1
                if answer.status_code == 500:
                    failures.append(f"{what}: {method} {path}")
    assert sum(answers.values()) > 3000, answers
    assert failures == []
