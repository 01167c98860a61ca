"""Launch cost: SAML tile launches and OIDC code-to-token exchanges against the portal under gunicorn.

    .venv/bin/python bench/launch.py [--n 300] [--rounds 3] [--concurrency 1] [--workers 2]
                                     [--max-seconds 25]

Sets up a temporary instance folder, a SQLite file (migrated with portal.migrate.upgrade, filled
with a small demo district through the roster importer), a private redis-server, one SAML app and
one OIDC app granted to the demo student's school, and `gunicorn -w 2 portal.wsgi:app` on
127.0.0.1. Then, in one run, each phase bounded in count (--n) and time (--max-seconds):

  trivial   the cheap real routes of the same app, by a signed-in browser: a static file, the
            OpenID discovery document and the 404 page; the cheapest is "the trivial route";
  saml      GET /launch/<slug> for a signed-in student: release, build, sign Assertion and
            Response, the self-submitting form page;
  authorize GET /oidc/authorize for a signed-in student: the codes for the next phase;
  token     POST /oidc/token (client_secret_basic, PKCE): code to access token and signed ID token;
  sign      one RSA-2048 PKCS#1 v1.5 SHA-256 signature (cryptography), timed in this process.

For every phase it prints requests per second and the server's CPU per request: user + system
time of the gunicorn master and workers from /proc/<pid>/stat before and after, divided by the
requests. The phases run --rounds times in turn and each figure is the median over the rounds,
as the machine may be shared. One connection at a time by default: on a machine with two cores,
two busy workers and the client compete for them and every route's CPU per request rises
(--concurrency 2 shows it); the ratios are what to read. Aims: a SAML launch at most the trivial route + 2.5 signatures (the Response and the
Assertion are both signed), a token exchange at most the trivial route + 1.5 signatures (one ID
token), and fewer than 3.5 trivial requests of CPU per exchange (node's oidc-provider, measured on
this class of machine). Everything it starts is stopped at the end; it listens on 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.serving import (  # noqa: E402
    Browser, portal_env, process_cpu_seconds, start_gunicorn, stop_process_group, wait_until_up,
)

CSRF_RE = re.compile(rb'name="csrf_token" type="hidden" value="([^"]+)"')
SAML_APP, OIDC_APP = "Bench Reading", "Bench Math"
APP_BASE = "https://bench-app.example"
REDIRECT = f"{APP_BASE}/oidc/callback"
SCOPE = "openid profile roster"


# --- set-up ---------------------------------------------------------------------------------

def build_portal(env: dict, students: int) -> dict:
    """Create the schema, import a small demo district, register and grant the two apps."""
    os.environ.update(env)
    from portal import create_app
    from portal.admin.services import grant_app, release_fields
    from portal.db import db
    from portal.migrate import upgrade
    from portal.roster.demo import DEMO_STUDENT, ELEMENTARY, load_demo
    from portal.sso.oidc.clients import register_client
    from portal.sso.saml import register_sp

    app = create_app()
    with app.app_context():
        upgrade(db.engine)
        load_demo(db.session, students=students)
        saml = register_sp(db.session, SAML_APP, entity_id=f"{APP_BASE}/saml/metadata",
                           acs_urls=[f"{APP_BASE}/saml/acs"], relay_state=f"{APP_BASE}/")
        grant_app(db.session, saml.slug, school=ELEMENTARY)
        oidc, secret = register_client(db.session, OIDC_APP, redirect_uris=[REDIRECT],
                                       login_uri=f"{APP_BASE}/oidc/login")
        grant_app(db.session, oidc.slug, school=ELEMENTARY)
        release_fields(db.session, oidc.slug, ["given_name", "family_name_initial", "grade", "school"])
        info = {"saml_slug": saml.slug, "client_id": oidc.client_id, "client_secret": secret,
                "username": DEMO_STUDENT.username, "password": DEMO_STUDENT.password}
        db.session.remove()
        db.engine.dispose()
    return info


# --- the browser ----------------------------------------------------------------------------

def sign_in(browser: Browser, username: str, password: str) -> None:
    _, _, page = browser.request("GET", "/login")
    token = CSRF_RE.search(page).group(1).decode()
    status, _, _ = browser.request("POST", "/login", urlencode(
        {"username": username, "password": password, "csrf_token": token}))
    if status != 302:
        raise RuntimeError(f"sign-in failed: {status}")


# --- phases ---------------------------------------------------------------------------------

@dataclass
class Phase:
    name: str
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    first_error: str = ""
    outputs: list = field(default_factory=list)

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.requests if self.requests else float("nan")

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Summary:
    """One phase over all rounds: medians of the per-round figures, totals of the counts."""

    name: str
    rounds: list[Phase]

    @property
    def requests(self) -> int:
        return sum(p.requests for p in self.rounds)

    @property
    def errors(self) -> int:
        return sum(p.errors for p in self.rounds)

    @property
    def first_error(self) -> str:
        return next((p.first_error for p in self.rounds if p.first_error), "")

    @property
    def cpu_ms(self) -> float:
        return statistics.median(p.cpu_ms for p in self.rounds)

    @property
    def rate(self) -> float:
        return statistics.median(p.rate for p in self.rounds)


def run_phase(name: str, browsers: list[Browser], master: int, n: int, max_seconds: float,
              one) -> Phase:
    """Run `one(browser, i)` n times over the browsers' threads, stopping at max_seconds.

    `one` returns (ok, output or reason). CPU is read before and after the whole phase.
    """
    phase = Phase(name)
    lock = threading.Lock()
    counter = iter(range(n))
    outputs: dict[int, object] = {}

    def worker(browser: Browser):
        while time.monotonic() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            ok, out = one(browser, i)
            with lock:
                phase.requests += 1
                if ok:
                    outputs[i] = out
                else:
                    phase.errors += 1
                    phase.first_error = phase.first_error or str(out)[:200]

    cpu0, t0 = process_cpu_seconds(master), time.monotonic()
    deadline = t0 + max_seconds
    threads = [threading.Thread(target=worker, args=(b,), daemon=True) for b in browsers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max_seconds + 30)
    phase.seconds = time.monotonic() - t0
    phase.cpu = process_cpu_seconds(master) - cpu0
    phase.outputs = [outputs[i] for i in sorted(outputs)]
    return phase


def get(path: str, expect: int, needle: bytes | None = None):
    def one(browser: Browser, i: int):
        status, _, data = browser.request("GET", path)
        if status != expect or (needle and needle not in data):
            return False, f"GET {path}: {status}"
        return True, None
    return one


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize(client_id: str, challenge: str):
    def one(browser: Browser, i: int):
        query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
                           "scope": SCOPE, "state": f"s{i}", "nonce": secrets.token_urlsafe(12),
                           "code_challenge": challenge, "code_challenge_method": "S256"})
        status, headers, _ = browser.request("GET", f"/oidc/authorize?{query}")
        location = headers.get("Location", "")
        code = parse_qs(urlsplit(location).query).get("code", [None])[0]
        if status != 302 or not location.startswith(REDIRECT) or not code:
            return False, f"authorize: {status} {location[:80]}"
        return True, code
    return one


def exchange(codes: list[str], client_id: str, secret: str, verifier: str):
    basic = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()

    def one(browser: Browser, i: int):
        body = urlencode({"grant_type": "authorization_code", "code": codes[i], "redirect_uri": REDIRECT,
                          "code_verifier": verifier})
        # The app's server calls the token endpoint: no browser cookie.
        status, _, data = browser.request("POST", "/oidc/token", body, {"Authorization": basic},
                                          cookies=False)
        if status != 200 or b'"id_token"' not in data:
            return False, f"token: {status} {data[:120]!r}"
        return True, None
    return one


def signature_ms(batches: int = 5, per_batch: int = 100, max_seconds: float = 10.0) -> float:
    """CPU milliseconds of one RSA-2048 PKCS#1 v1.5 SHA-256 signature here (median of batches)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data = secrets.token_bytes(512)
    results, deadline = [], time.monotonic() + max_seconds
    for _ in range(batches):
        t0 = time.thread_time()
        for _ in range(per_batch):
            key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        results.append(1000 * (time.thread_time() - t0) / per_batch)
        if time.monotonic() > deadline:
            break
    return statistics.median(results)


# --- main -----------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=300, help="requests in each phase of a round")
    p.add_argument("--rounds", type=int, default=3, help="times every phase runs (medians are shown)")
    p.add_argument("--concurrency", type=int, default=1, help="client connections at once")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    p.add_argument("--students", type=int, default=60, help="size of the demo district")
    p.add_argument("--max-seconds", type=float, default=25.0,
                   help="time limit of each phase (codes live 60 s: authorize + token stay below it)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.max_seconds * 2 > 58:
        raise SystemExit("--max-seconds must be at most 29: codes from the authorize phase live 60 s")
    from portal.devserver import RedisProcess, free_port

    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-launch-"))
    redis_proc = gunicorn = None
    try:
        redis_proc = RedisProcess(tmp / "redis").start()
        env = portal_env(tmp, redis_proc.url, PORTAL_OIDC_CODE_SECONDS="60")
        env.pop("PORTAL_OIDC_ISSUER", None)
        print(f"setting up in {tmp} (district of {args.students} students) ...", flush=True)
        info = build_portal({k: v for k, v in env.items() if k.startswith("PORTAL_")}, args.students)

        port = free_port()
        gunicorn = start_gunicorn(env, port, args.workers, tmp / "gunicorn.log")
        wait_until_up(port, gunicorn)
        print(f"gunicorn -w {args.workers} on 127.0.0.1:{port} (pid {gunicorn.pid}); "
              f"{args.concurrency} client connection(s), {args.rounds} rounds of {args.n} requests a phase",
              flush=True)

        browsers = [Browser(port) for _ in range(args.concurrency)]
        for b in browsers:
            sign_in(b, info["username"], info["password"])
        verifier, challenge = pkce_pair()
        launch = f"/launch/{info['saml_slug']}"
        static = "/static/css/portal.css"
        trivial = {
            f"GET {static}": get(static, 200),
            "GET /.well-known/openid-configuration": get("/.well-known/openid-configuration", 200),
            "GET /no-such-page (404)": get("/no-such-page", 404),
        }
        warm = max(8, 4 * args.workers)  # every worker loads keys, templates and statements first
        for one in [*trivial.values(), get(launch, 200, b"SAMLResponse")]:
            run_phase("warm-up", browsers, gunicorn.pid, warm, 30, one)
        codes = run_phase("warm-up", browsers, gunicorn.pid, warm, 30,
                          authorize(info["client_id"], challenge)).outputs
        run_phase("warm-up", browsers, gunicorn.pid, len(codes), 30,
                  exchange(codes, info["client_id"], info["client_secret"], verifier))

        names = [*trivial, "SAML launch: GET /launch/<slug>", "OIDC authorize (codes for the next phase)",
                 "OIDC token exchange: POST /oidc/token"]
        rounds: dict[str, list[Phase]] = {name: [] for name in names}
        sigs = [signature_ms()]
        for r in range(args.rounds):
            print(f"round {r + 1} of {args.rounds} ...", flush=True)
            for name, one in trivial.items():
                rounds[name].append(run_phase(name, browsers, gunicorn.pid, args.n, args.max_seconds, one))
            rounds[names[-3]].append(run_phase(names[-3], browsers, gunicorn.pid, args.n, args.max_seconds,
                                               get(launch, 200, b"SAMLResponse")))
            auth = run_phase(names[-2], browsers, gunicorn.pid, args.n, args.max_seconds,
                             authorize(info["client_id"], challenge))
            rounds[names[-2]].append(auth)
            rounds[names[-1]].append(run_phase(
                names[-1], browsers, gunicorn.pid, len(auth.outputs), args.max_seconds,
                exchange(auth.outputs, info["client_id"], info["client_secret"], verifier)))
            sigs.append(signature_ms())
        summaries = [Summary(name, rounds[name]) for name in names]
        print(f"\n{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; gunicorn -w {args.workers}, "
              f"{args.concurrency} client connection(s); medians of {args.rounds} rounds of {args.n}")
        report(summaries[:-3], *summaries[-3:], sigs[1:])
        return 1 if any(s.errors for s in summaries) else 0
    finally:
        stop_process_group(gunicorn)
        if redis_proc:
            redis_proc.stop()
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


def report(trivials: list[Summary], saml: Summary, auth: Summary, token: Summary,
           round_sigs: list[float]) -> None:
    """Print the table; the aims are judged round by round (each against its own trivial route
    and signature, as the machine's load changes) and the median taken."""
    base = min(trivials, key=lambda p: p.cpu_ms)
    sig = statistics.median(round_sigs)

    def per_round(phase: Summary, fn) -> float:
        return statistics.median(fn(p.cpu_ms, b.cpu_ms, s)
                                 for p, b, s in zip(phase.rounds, base.rounds, round_sigs))

    print(f"{'phase':48} {'requests':>8} {'errors':>6} {'req/s':>8} {'CPU ms/req':>10} "
          f"{'x trivial':>9} {'= trivial + N sig':>17}")
    for p in (*trivials, saml, auth, token):
        mark = "  <- the trivial route" if p is base else ""
        extra = (p.cpu_ms - base.cpu_ms) / sig
        print(f"{p.name:48} {p.requests:8d} {p.errors:6d} {p.rate:8.1f} {p.cpu_ms:10.2f} "
              f"{p.cpu_ms / base.cpu_ms:9.2f} {extra:17.2f}{mark}")
    print(f"{'RSA-2048 PKCS#1 v1.5 SHA-256 sign, in process':48} {'':8} {'':6} {1000 / sig:8.1f} "
          f"{sig:10.2f} {sig / base.cpu_ms:9.2f}")
    for p in (*trivials, saml, auth, token):
        if p.errors:
            print(f"  {p.name}: {p.errors} errors, first: {p.first_error}")

    saml_sigs = per_round(saml, lambda p, b, s: (p - b) / s)
    token_sigs = per_round(token, lambda p, b, s: (p - b) / s)
    token_trivials = per_round(token, lambda p, b, s: p / b)
    print("\nround by round, the median:")
    print(f"SAML launch    = trivial + {saml_sigs:.2f} signatures  (aim: at most 2.5)  "
          f"{'met' if saml_sigs <= 2.5 else 'MISSED'}")
    print(f"token exchange = trivial + {token_sigs:.2f} signatures  (aim: at most 1.5)  "
          f"{'met' if token_sigs <= 1.5 else 'MISSED'}")
    print(f"token exchange = {token_trivials:.2f} trivial requests  (node oidc-provider: about 3.5)  "
          f"{'less' if token_trivials < 3.5 else 'NOT less'}")
    print(f"trivial route: {base.name}; server CPU is the gunicorn master and workers' user + system "
          f"time (/proc/<pid>/stat) over the phase, divided by its requests")


if __name__ == "__main__":
    sys.exit(main())
