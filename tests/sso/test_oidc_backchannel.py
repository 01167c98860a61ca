"""OpenID Connect Back-Channel Logout: when a student's portal session ends, an app that signed them
in through it receives a signed logout token at its registered URI, server to server; the token is
checked here with Authlib's JOSE (not the portal's joserfc). An app that is down, slow or redirects
never holds up the sign-out; bad URIs are refused when the app is registered."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import warnings

import authlib.deprecate  # noqa: F401  (first: it puts an "always" filter in front of ours)
import pytest

with warnings.catch_warnings():   # Authlib's own (older) JOSE code: not joserfc, the portal's, on purpose
    warnings.filterwarnings("ignore", "authlib.jose module is deprecated")
    from authlib.jose import JsonWebKey, JsonWebToken

from portal.db import db
from portal.sessions import WATCHED
from portal.sso.oidc.backchannel import EVENT, wait_for_deliveries
from tests.badges.conftest import let_sessions_idle, new_client
from tests.conftest import AuthActions, csrf_token
from tests.serving import start_serving, stop_serving
from tests.test_sessions import sid_of
from tests.sso.test_oidc_support import (  # noqa: F401  (fixtures)
    PASSWORD, REDIRECT, exchange, get_code, oidc_world, register_oidc_app,
)

ISSUER = "http://localhost"   # the Flask test client's address
IDLE = 60 * 60                # the tests' idle time-out (tests/conftest.py)


class AppEndpoint:
    """An app's back-channel logout endpoint on 127.0.0.1: records what is posted to it."""

    def __init__(self, *, status: int = 200, location: str | None = None,
                 hold: threading.Event | None = None):
        self.posts: list[dict] = []
        self.arrived = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length).decode()
                outer.posts.append({"path": self.path, "type": self.headers.get("Content-Type"),
                                    "form": {k: v[0] for k, v in parse_qs(body).items()}})
                outer.arrived.set()
                if hold is not None:
                    hold.wait(10)
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/backchannel-logout"
        self.thread = start_serving(self.server, "app-site")

    def close(self):
        stop_serving(self.server, self.thread)


@pytest.fixture
def client(app):
    """Each request in its own app context, as under a real server (nothing kept in `g`)."""
    return new_client(app)


def sign_in_again(client, username: str = "ada.lovelace"):
    """Post the sign-in form from a signed-in page (as the portal's sign-in-again page does)."""
    answer = client.post("/login", data={"username": username, "password": PASSWORD,
                                         "csrf_token": csrf_token(client, "/")})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]


@pytest.fixture
def endpoint():
    found = AppEndpoint()
    yield found
    found.close()


@pytest.fixture
def listening_app(oidc_world, endpoint):
    """A second app of the same school, registered with a back-channel logout URI."""
    registered, secret = register_oidc_app(db.session, "Reading Garden", school=oidc_world.school,
                                           release=["given_name"], backchannel_logout_uri=endpoint.url)
    return type(oidc_world)(oidc_world.school, oidc_world.section, oidc_world.student, registered,
                            registered.client_id, secret)


def launch(client, world) -> dict:
    """The app signs the (signed-in) student in; return its ID token's claims, unverified."""
    code, verifier, _ = get_code(client, world)
    answer = exchange(client, world, code, verifier)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return _claims(client, answer.json["id_token"])


def _claims(client, token: str, header: dict | None = None) -> dict:
    keys = JsonWebKey.import_key_set(client.get("/oidc/jwks").json)
    claims = JsonWebToken(["RS256"]).decode(token, keys)
    claims.validate(now=int(time.time()))
    if header is not None:
        header.update(claims.header)
    return dict(claims)


def logout_tokens(client, endpoint) -> list[tuple[dict, dict]]:
    assert wait_for_deliveries(10)
    tokens = []
    for post in endpoint.posts:
        assert post["type"] == "application/x-www-form-urlencoded" and set(post["form"]) == {"logout_token"}
        header: dict = {}
        tokens.append((_claims(client, post["form"]["logout_token"], header), header))
    return tokens


def test_signing_out_sends_the_app_a_signed_logout_token(client, auth, redis_client, listening_app,
                                                         endpoint):
    from portal.sessions import WATCHED
    auth.login()
    id_token = launch(client, listening_app)
    assert id_token["sid"] and endpoint.posts == [] and redis_client.zcard(WATCHED) == 1
    auth.logout()
    assert redis_client.zcard(WATCHED) == 0       # nothing left for the sweep to tell
    [(claims, header)] = logout_tokens(client, endpoint)
    assert header["typ"] == "logout+jwt" and header["alg"] == "RS256" and header["kid"]
    assert claims["iss"] == id_token["iss"] == ISSUER and claims["aud"] == listening_app.client_id
    assert claims["sub"] == id_token["sub"] and claims["sid"] == id_token["sid"]
    assert claims["events"] == {EVENT: {}} and claims["jti"] and "nonce" not in claims
    assert 0 < claims["exp"] - claims["iat"] <= 120
    assert set(claims) == {"iss", "aud", "iat", "exp", "jti", "sub", "sid", "events"}


def test_sid_is_the_apps_own_and_only_for_apps_that_listen(app, client, auth, oidc_world, listening_app,
                                                           endpoint):
    auth.login()
    quiet = launch(client, oidc_world)           # registered without a back-channel URI
    assert "sid" not in quiet
    first, second = launch(client, listening_app), launch(client, listening_app)
    assert first["sid"] == second["sid"]         # one portal session, one sid for this app
    auth.logout()
    assert len(logout_tokens(client, endpoint)) == 1   # the quiet app is told nothing
    later = new_client(app)
    AuthActions(later).login()
    assert launch(later, listening_app)["sid"] != first["sid"]   # a new session, a new sid


def test_signing_in_again_keeps_what_the_session_started(client, auth, listening_app, endpoint):
    auth.login()
    id_token = launch(client, listening_app)
    sign_in_again(client)                         # the same student, again (a new session id)
    assert wait_for_deliveries(10) and endpoint.posts == []
    auth.logout()
    [(claims, _)] = logout_tokens(client, endpoint)
    assert claims["sid"] == id_token["sid"]


def test_another_student_signing_in_on_the_browser_ends_the_first_ones_apps(client, auth, roster,
                                                                             listening_app, endpoint):
    roster.person("alan.turing", schools=[listening_app.school], grades="02")
    auth.login()
    id_token = launch(client, listening_app)
    sign_in_again(client, "alan.turing")
    [(claims, _)] = logout_tokens(client, endpoint)
    assert claims["sub"] == id_token["sub"] and claims["sid"] == id_token["sid"]


@pytest.mark.parametrize("ending", ["password reset", "security hold", "the bell"])
def test_every_way_a_session_ends_tells_the_app(client, auth, app, roster, redis_client,
                                                listening_app, endpoint, ending):
    from portal.admin.holds import place_hold
    from portal.auth.services import set_password
    from portal.models import Role
    from portal.sessions import WATCHED
    from portal.teacher.bell import sign_out_class

    auth.login()
    id_token = launch(client, listening_app)
    student = listening_app.student
    if ending == "password reset":
        set_password(db.session, redis_client, student, "a brand new password")
    elif ending == "security hold":
        place_hold(db.session, redis_client, student, actor=None, reason="lost laptop",
                   now=datetime.now(timezone.utc))
    else:
        teacher = roster.person("t.garden", role=Role.teacher, schools=[listening_app.school],
                                sections=[listening_app.section])
        sign_out_class(db.session, redis_client, teacher, listening_app.section)
    [(claims, _)] = logout_tokens(client, endpoint)
    assert claims["sid"] == id_token["sid"]
    assert client.get("/").status_code == 302     # and the portal session is over too
    assert redis_client.zcard(WATCHED) == 0       # nothing left for the sweep to tell


def test_a_session_that_timed_out_is_told_when_the_persons_sessions_end(client, auth, redis_client,
                                                                         listening_app, endpoint):
    from portal.sessions import PREFIX
    from portal.sessions import end_sessions_for
    auth.login()
    id_token = launch(client, listening_app)
    for key in redis_client.scan_iter(PREFIX + "*"):
        redis_client.delete(key)                  # the idle time-out: nobody was told
    assert wait_for_deliveries(10) and endpoint.posts == []
    end_sessions_for(redis_client, listening_app.student.id)   # e.g. a password reset, later
    [(claims, _)] = logout_tokens(client, endpoint)
    assert claims["sid"] == id_token["sid"]


def test_an_app_that_is_down_slow_or_redirects_never_holds_up_the_sign_out(client, auth, listening_app):
    from portal.sso.oidc.clients import set_backchannel_logout_uri
    hold, elsewhere = threading.Event(), AppEndpoint()
    slow = AppEndpoint(hold=hold)
    redirecting = AppEndpoint(status=307, location=elsewhere.url)
    try:
        # Down: nothing listens on the port any more.
        down = AppEndpoint()
        down.close()
        for url in (down.url, slow.url, redirecting.url):
            set_backchannel_logout_uri(db.session, listening_app.app.slug, url)
            auth.login()
            launch(client, listening_app)
            answer = auth.logout()
            assert answer.status_code == 302 and answer.headers["Location"].endswith("/login")
            if url == slow.url:
                # The sign-out came back while the app was still busy with the token.
                assert slow.arrived.wait(10) and not hold.is_set()
                hold.set()
        assert wait_for_deliveries(15)
        assert len(redirecting.posts) == 1 and elsewhere.posts == []   # no redirect followed
    finally:
        hold.set()
        for server in (slow, redirecting, elsewhere):
            server.close()


def test_discovery_says_so(client):
    config = client.get("/.well-known/openid-configuration").json
    assert config["backchannel_logout_supported"] is True
    assert config["backchannel_logout_session_supported"] is True
    assert "sid" in config["claims_supported"]


@pytest.mark.parametrize("uri, says", [
    ("http://learn.test/logout", "must start with https://"),
    ("https://learn.test/logout#here", "may not have a #fragment"),
    ("https://who:pw@learn.test/logout", "may not carry a user name or password"),
    ("file:///etc/passwd", "must start with https://"),
    ("https://learn.test/*", "no wildcards"),
])
def test_bad_logout_uris_are_refused_in_one_line(runner, oidc_world, uri, says):
    from portal.models import App
    before = dict(oidc_world.app.settings)
    result = runner.invoke(args=["apps", "logout-uri", oidc_world.app.slug, uri])
    assert result.exit_code != 0 and says in result.output and len(result.output.strip().splitlines()) == 1
    db.session.expire_all()
    assert db.session.get(App, oidc_world.app.id).settings == before
    added = runner.invoke(args=["apps", "add-oidc", "Another App", "--redirect-uri", REDIRECT,
                                "--login-uri", "https://learn.test/login", "--backchannel-logout-uri", uri])
    assert added.exit_code != 0 and says in added.output and "client_secret" not in added.output
    assert db.session.query(App).filter_by(name="Another App").count() == 0


def test_logout_uri_command_sets_and_removes_and_knows_oidc_apps_only(runner, oidc_world):
    from portal.admin.services import add_link_app
    from portal.models import App
    url = "https://learn.test/backchannel"
    result = runner.invoke(args=["apps", "logout-uri", oidc_world.app.slug, url])
    assert result.exit_code == 0 and "hears at https://learn.test/backchannel" in result.output
    db.session.expire_all()
    assert db.session.get(App, oidc_world.app.id).settings["backchannel_logout_uri"] == url
    result = runner.invoke(args=["apps", "logout-uri", oidc_world.app.slug])
    assert result.exit_code == 0 and "no longer hears" in result.output
    db.session.expire_all()
    assert "backchannel_logout_uri" not in db.session.get(App, oidc_world.app.id).settings
    add_link_app(db.session, "Library", "https://library.test/")
    for name, says in (("Library", "does not sign in with OpenID Connect"), ("Nothing", "no app called")):
        result = runner.invoke(args=["apps", "logout-uri", name, url])
        assert result.exit_code != 0 and says in result.output


def test_opting_out_of_an_app_signs_the_student_out_of_that_app_only(client, auth, redis_client,
                                                                      listening_app, endpoint):
    from portal.admin.optouts import opt_out
    other_end = AppEndpoint()
    try:
        registered, secret = register_oidc_app(db.session, "Science Garden", school=listening_app.school,
                                               backchannel_logout_uri=other_end.url)
        science = type(listening_app)(listening_app.school, listening_app.section, listening_app.student,
                                      registered, registered.client_id, secret)
        auth.login()
        reading_token, science_token = launch(client, listening_app), launch(client, science)
        opt_out(db.session, listening_app.student, listening_app.app, actor=None,
                now=datetime.now(timezone.utc), client=redis_client)
        [(claims, _)] = logout_tokens(client, endpoint)
        assert claims["sid"] == reading_token["sid"] and other_end.posts == []
        assert client.get("/").status_code == 200          # still signed in to the portal
        auth.logout()                                      # later: only the other app is told
        assert wait_for_deliveries(10) and len(endpoint.posts) == 1
        [(claims, _)] = logout_tokens(client, other_end)
        assert claims["sid"] == science_token["sid"]
    finally:
        other_end.close()


def test_a_code_exchanged_after_the_student_signed_out_signs_no_one_in(client, auth, oidc_world,
                                                                         listening_app, endpoint):
    auth.login()
    code, verifier, _ = get_code(client, listening_app)
    quiet_code, quiet_verifier, _ = get_code(client, oidc_world)
    auth.logout()
    late = exchange(client, listening_app, code, verifier)
    # The app would never hear of an end that has already happened: it gets no sign-in.
    assert late.status_code == 400 and late.json["error"] == "invalid_grant"
    assert wait_for_deliveries(10) and endpoint.posts == []
    # Nor does an app that does not listen: on a shared device, a sign-in in flight must not
    # survive "Not you? Sign out".
    quiet = exchange(client, oidc_world, quiet_code, quiet_verifier)
    assert quiet.status_code == 400 and quiet.json["error"] == "invalid_grant"
    assert "signed out" in quiet.json["error_description"]


class _Dripping:
    """An app that answers `head`, then `byte` at a time, forever (until closed): each byte comes
    well within a socket time-out, so only a deadline on the whole delivery ends it."""

    def __init__(self, head: bytes = b"HTTP/1.1 200 OK\r\n", byte: bytes = b"X", scheme: str = "http"):
        import socket
        self.head, self.byte = head, byte
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"{scheme}://127.0.0.1:{self.sock.getsockname()[1]}/logout"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn):
        try:
            conn.recv(65536)
            conn.sendall(self.head)
            while not self.stop.wait(0.5):
                conn.sendall(self.byte)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()


def test_an_app_that_drips_or_hangs_holds_up_its_own_logouts_only(app):
    from portal.sso.oidc import backchannel
    hold = threading.Event()
    hung, healthy, dripping = AppEndpoint(hold=hold), AppEndpoint(), _Dripping()
    try:
        for i in range(6):                        # the bell for six students, at a hung app
            backchannel._send_later(hung.url, f"token-{i}", "hung-app")
        backchannel._send_later(dripping.url, "token-d", "dripping-app")
        backchannel._send_later(healthy.url, "token-h", "healthy-app")
        # The healthy app hears while the hung one still holds its first deliveries.
        assert healthy.arrived.wait(10) and not hold.is_set()
        assert len(hung.posts) <= backchannel.PER_APP
        hold.set()
        # The dripping app would answer for ever: the delivery's deadline ends it, not the drip.
        assert wait_for_deliveries(20)
        assert len(hung.posts) == 6 and healthy.posts[0]["form"] == {"logout_token": "token-h"}
    finally:
        hold.set()
        for server in (hung, healthy, dripping):
            server.close()


def test_a_code_from_before_the_student_signed_in_again_signs_no_one_in(client, auth, listening_app,
                                                                          endpoint):
    auth.login()
    code, verifier, _ = get_code(client, listening_app)
    sign_in_again(client)                 # the session the code was issued in is carried, and over
    late = exchange(client, listening_app, code, verifier)
    assert late.status_code == 400 and late.json["error"] == "invalid_grant"
    id_token = launch(client, listening_app)   # a code of the new session works, and is told
    auth.logout()
    [(claims, _)] = logout_tokens(client, endpoint)
    assert claims["sid"] == id_token["sid"]


def test_a_code_from_before_the_same_student_signed_in_again_still_works_for_an_app_that_does_not_listen(
        client, auth, oidc_world):
    auth.login()
    code, verifier, _ = get_code(client, oidc_world)
    sign_in_again(client)                 # still the same student, signed in: the code stands
    assert exchange(client, oidc_world, code, verifier).status_code == 200


def test_a_session_that_timed_out_idle_is_told_by_the_sweep(client, auth, runner, redis_client,
                                                            listening_app, endpoint):
    auth.login()
    id_token = launch(client, listening_app)
    assert "1 session" not in runner.invoke(args=["sessions", "sweep"]).output   # alive: untouched
    assert endpoint.posts == []
    let_sessions_idle(redis_client, IDLE)         # the idle time-out: nobody was told
    assert wait_for_deliveries(10) and endpoint.posts == []
    result = runner.invoke(args=["sessions", "sweep"])
    assert result.exit_code == 0 and "1 session had timed out: their apps were told" in result.output
    [(claims, _)] = logout_tokens(client, endpoint)
    assert claims["sid"] == id_token["sid"]
    again = runner.invoke(args=["sessions", "sweep"])
    assert "0 sessions had timed out" in again.output and len(endpoint.posts) == 1


def test_the_sweep_counts_only_sessions_that_had_something_to_tell(client, auth, runner, redis_client,
                                                                    listening_app, endpoint):
    from portal.sessions import WATCHED
    auth.login()
    get_code(client, listening_app)               # watched, but no app was signed in
    sign_in_again(client)
    let_sessions_idle(redis_client, IDLE)
    assert "0 sessions had timed out" in runner.invoke(args=["sessions", "sweep"]).output
    assert redis_client.zcard(WATCHED) == 0       # looked at, and let go


def test_the_sweep_follows_a_session_carried_to_a_new_id(client, auth, runner, listening_app, endpoint):
    auth.login()
    launch(client, listening_app)
    sign_in_again(client)                         # the same student: a new id, the ties carried
    assert "0 sessions had timed out" in runner.invoke(args=["sessions", "sweep"]).output
    assert wait_for_deliveries(10) and endpoint.posts == []


def test_a_carried_watched_session_is_watched_under_its_new_id_alone(client, auth, runner, redis_client,
                                                                    listening_app, endpoint):
    auth.login()
    launch(client, listening_app)
    old = sid_of(client)
    sign_in_again(client)
    new = sid_of(client)
    assert [m.decode() for m in redis_client.zrange(WATCHED, 0, -1)] == [new] and new != old
    let_sessions_idle(redis_client, IDLE)
    assert "1 session had timed out" in runner.invoke(args=["sessions", "sweep"]).output
    assert wait_for_deliveries(10) and len(endpoint.posts) == 1


def test_signing_in_again_enters_nothing_in_watched_when_no_app_listens(client, auth, oidc_world, redis_client):
    # Found by review: every sign-in again entered the new session in WATCHED (and left the old
    # one there), watched or not: without `portal sessions sweep` from cron, which a district
    # whose apps hear of no sign-out has no reason to run, the set grew for ever.
    auth.login()
    for _ in range(3):
        sign_in_again(client)
    assert redis_client.zcard(WATCHED) == 0


def test_queued_logouts_are_delivered_when_the_process_exits(tmp_path):
    # Found by review: a runner at exit could not start the app's next delivery (the pool takes
    # nothing new then), so a command that ended many sessions told only the first few.
    import subprocess
    import sys
    from pathlib import Path
    server = AppEndpoint()
    try:
        script = ("from portal.sso.oidc import backchannel\n"
                  f"for i in range(6): backchannel._send_later({server.url!r}, f't{{i}}', 'one-app')\n")
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60,
                       cwd=Path(__file__).resolve().parents[2])
        assert sorted(p["form"]["logout_token"] for p in server.posts) == [f"t{i}" for i in range(6)]
    finally:
        server.close()


@pytest.mark.parametrize("uri, host, port", [
    ("http://[::1]/logout", "::1", 80), ("https://[2001:db8::5]/bc", "2001:db8::5", 443),
    ("https://learn.test:8443/bc", "learn.test", 8443), ("http://127.0.0.1/x", "127.0.0.1", 80),
])
def test_an_ipv6_address_without_a_port_is_its_whole_address(uri, host, port):
    # Found by review: http.client read the last group of "::1" as the port.
    from urllib.parse import urlsplit

    from portal.sso.oidc.backchannel import _connection
    connection = _connection(urlsplit(uri))
    assert (connection.host, connection.port) == (host, port)


def test_a_deadline_that_passes_while_connecting_still_ends_the_delivery(app, monkeypatch):
    # Found by review: a name lookup slower than the deadline left no socket to shut when it
    # passed, and the delivery then waited on a dripping answer for as long as it went on.
    import socket
    import time as clock
    from portal.sso.oidc import backchannel
    real = socket.getaddrinfo

    def slow_lookup(*args, **kwargs):
        clock.sleep(backchannel.SEND_SECONDS + 0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_lookup)
    server = _Dripping()
    try:
        backchannel._send_later(server.url, "token-s", "slow-app")
        assert wait_for_deliveries(15)      # the drip would go on until the server is closed
    finally:
        server.close()


@pytest.mark.parametrize("drip", [
    # Found by review: the deadline shut the connection's socket, which during a TLS handshake
    # was the plain one already handed over: the handshake went on. Here the hello is answered
    # with the header of a long record, then a byte at a time.
    dict(head=b"\x16\x03\x03\x40\x00", byte=b"\x00", scheme="https"),
    # Found by review: with Connection: close, http.client hands the socket to the response and
    # forgets it; the deadline, looking for it on the connection, found none.
    dict(head=b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5000\r\n\r\n", byte=b"x"),
], ids=["tls-handshake", "body-after-connection-close"])
def test_a_delivery_dripped_past_the_connect_is_cut_off_too(app, drip):
    from portal.sso.oidc import backchannel
    server = _Dripping(**drip)
    try:
        backchannel._send_later(server.url, "token-d", "dripping-app")
        assert wait_for_deliveries(20)      # the drip would go on until the server is closed
    finally:
        server.close()


def test_apps_that_hang_with_a_backlog_do_not_starve_another_app(app):
    # Found by review: a runner kept its pool thread until its app's queue was empty, so four
    # hanging apps with a backlog held all eight threads while another app waited behind them.
    from portal.sso.oidc import backchannel
    hold = threading.Event()
    slow = [AppEndpoint(hold=hold) for _ in range(4)]
    healthy = AppEndpoint()
    try:
        for n, server in enumerate(slow):
            for i in range(10):
                backchannel._send_later(server.url, f"t{i}", f"slow-{n}")
        backchannel._send_later(healthy.url, "token-h", "healthy-app")
        assert healthy.arrived.wait(10)
        assert sum(len(s.posts) for s in slow) < 40           # their backlogs were still waiting
    finally:
        hold.set()
        assert wait_for_deliveries(60)
        for server in (*slow, healthy):
            server.close()


def test_a_pool_that_queues_a_turn_but_starts_no_thread_runs_it_once(app, monkeypatch):
    # Found by review: submit() queues the turn, then may fail to start one more thread; taking
    # that for "the pool took nothing" ran the turn here as well, and the second run raised.
    from concurrent.futures import ThreadPoolExecutor

    from portal.sso.oidc import backchannel
    server = AppEndpoint()
    real = ThreadPoolExecutor._adjust_thread_count
    failed = []

    def no_new_thread(self):
        if self._threads and not failed:
            failed.append(True)
            raise RuntimeError("can't start new thread")
        return real(self)

    monkeypatch.setattr(ThreadPoolExecutor, "_adjust_thread_count", no_new_thread)
    try:
        for i in range(6):
            backchannel._send_later(server.url, f"t{i}", "one-app")
        assert wait_for_deliveries(20)
        assert sorted(p["form"]["logout_token"] for p in server.posts) == [f"t{i}" for i in range(6)]
        assert "one-app" not in backchannel._running and "one-app" not in backchannel._queues
    finally:
        server.close()


def test_an_app_removed_while_a_student_was_signed_in_still_hears_that_they_signed_out(
        client, auth, runner, listening_app, endpoint):
    auth.login()
    id_token = launch(client, listening_app)
    result = runner.invoke(args=["apps", "remove", "Reading Garden", "--yes"])
    assert result.exit_code == 0, result.output
    # Still signed in there: on a shared Chromebook the next child would be in as this one.
    auth.logout()
    [(claims, _)] = logout_tokens(client, endpoint)
    assert claims["aud"] == listening_app.client_id and claims["sid"] == id_token["sid"]
