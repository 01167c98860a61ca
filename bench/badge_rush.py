"""Badge rush: N students sign in with their badges at classroom kiosks, against gunicorn.

    .venv/bin/python bench/badge_rush.py [--n 400] [--concurrency 8] [--students-total 5000]
                                         [--apps 20] [--trivial 2000] [--profile]

Builds a demo district (portal.roster.demo, through the roster importer) in a fresh SQLite file,
issues badges to N students of grades KG-02 (badge alone, the default policy) with
portal.badges.services.issue_badge, adds --apps apps for them beside the demo apps, enrolls
kiosk devices in their schools, starts a private redis-server and
`gunicorn -w 2 -b 127.0.0.1:PORT portal.wsgi:app` (sync workers, one per core, as the
README's production command: --threads 4 made the same sign-ins cost about half as much CPU again,
threads in a worker contending for one interpreter), binds every device's browser, and then
measures two phases at the same concurrency:

  trivial  GET /static/css/portal.css: the cheapest route through the app (Flask's static view;
           the session store is skipped for static files), the unit of cost; and, for
           perspective, GET /login: the cheapest real page (a template, a CSRF token, a session);
  rush     every sign-in is the full kiosk path: POST /kiosk/badge (Bearer credential, the
           token) -> GET the hand-off URL in the device's browser (device cookie) -> 302 ->
           GET /badges/home, the tiles (counted against what portal.access gives the student).

The portal's own rate limits stay as configured: the load is spread over devices (at most
--per-device sign-ins each, under the 60 per minute per device) and every badge is scanned
once (10 per 5 minutes per badge). It prints sign-ins per second and p50/p99, the trivial
route's figures, and the server CPU (gunicorn master and workers, /proc/<pid>/stat, before and
after each phase) per sign-in and per trivial request: the aim is a sign-in costing at most 4
trivial requests. --profile also runs the sign-ins once more in this process under cProfile
(Flask test client, same database and Redis) and prints where the time goes.
Everything listens on 127.0.0.1 only; everything started is stopped at the end.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import percentile, run_threads  # noqa: E402
from bench.serving import (  # noqa: E402
    Browser, Connection, portal_env, process_cpu_seconds, start_gunicorn, stop_process_group,
    wait_until_up,
)

GRADES = ("KG", "01", "02")        # badge alone under the default policy
TRIVIAL = "/static/css/portal.css"
LOGIN = "/login"
AIM = 4.0                           # a sign-in may cost this many trivial requests
WARMUP = 24                         # sign-ins before the measured ones (excluded)


# --- the district ---------------------------------------------------------------------------

@dataclass
class Signer:
    token: str = field(repr=False)
    school_id: int
    tiles: int


@dataclass
class Device:
    credential: str = field(repr=False)
    school_id: int
    signers: list[Signer] = field(default_factory=list)


def build_district(app, students_total: int, n: int, n_apps: int, per_device: int,
                   concurrency: int):
    """Import the demo district, issue N badges, add apps, enroll devices; return the devices."""
    from sqlalchemy import select

    from portal import access
    from portal.admin.services import add_link_app, grant_app
    from portal.badges.kiosks import create_pairing_code, enroll_device
    from portal.badges.services import issue_badge
    from portal.db import db
    from portal.migrate import upgrade
    from portal.models import Person, PersonSchool, Role, School
    from portal.roster.demo import load_demo

    with app.app_context():
        upgrade(db.engine)
        load_demo(db.session, students_total)
        session, client = db.session, app.extensions["redis"]
        rows = session.execute(
            select(Person, PersonSchool.school_id)
            .join(PersonSchool, PersonSchool.person_id == Person.id)
            .where(Person.role == Role.student, Person.grades.in_(GRADES), Person.enabled.is_(True))
            .order_by(Person.id).limit(n)).all()
        if len(rows) < n:
            raise SystemExit(f"only {len(rows)} students in grades {', '.join(GRADES)}: "
                             f"raise --students-total or lower --n")
        # Apps every signer sees, each through another kind of grant, and decoys for others.
        schools = sorted({school_id for _, school_id in rows})
        sourced = {row.id: row.sourced_id for row in session.execute(select(School.id, School.sourced_id))}
        for a in range(1, n_apps + 1):
            name = f"Class App {a:03d}"
            add_link_app(session, name, f"https://apps.example/{a}")
            kind = a % 4
            if kind == 0:
                grant_app(session, name, district=True)
            elif kind == 1:
                for grade in GRADES:
                    grant_app(session, name, grade=grade)
            elif kind == 2:
                grant_app(session, name, role="student")
            else:
                for school_id in schools:
                    grant_app(session, name, school=sourced[school_id])
            grant_app(session, name, grade="07")   # a decoy: another group's grant
        signers = []
        for person, school_id in rows:
            issued = issue_badge(session, client, person, school=session.get(School, school_id))
            signers.append(Signer(issued.token, school_id, len(access.apps_for(session, person))))
        devices: list[Device] = []
        # Enough devices for every thread to have its own, none past its per-minute allowance.
        chunk = max(1, min(per_device, len(signers) // concurrency))
        for school_id in schools:
            mine = [s for s in signers if s.school_id == school_id]
            for start in range(0, len(mine), chunk):
                code = create_pairing_code(session, client, session.get(School, school_id)).code
                enrolled = enroll_device(session, client, code)
                devices.append(Device(enrolled.credential, school_id, mine[start:start + chunk]))
        db.session.remove()
        db.engine.dispose()
    return devices


# --- the kiosks and their browsers ----------------------------------------------------------

class Kiosk:
    """A classroom device: its API connection (Bearer) and its browser (cookies)."""

    def __init__(self, port: int, device: Device):
        self.device = device
        self.api = Connection(port)
        self.browser = Browser(port)

    def _post(self, path: str, data: dict):
        body = json.dumps(data).encode()
        return self.api.request("POST", path, body, {
            "Authorization": f"Bearer {self.device.credential}", "Content-Type": "application/json"})

    def open(self, path: str):
        return self.browser.request("GET", path)

    def bind(self) -> None:
        status, _, data = self._post("/kiosk/bind", {})
        if status != 200:
            raise RuntimeError(f"POST /kiosk/bind: {status}")
        status, _, _ = self.open(urlsplit(json.loads(data)["bind_url"]).path)
        if status != 200 or not self.browser.cookie("portal_kiosk"):
            raise RuntimeError(f"bind URL: {status}")

    def sign_in(self, signer: Signer, results: "Results") -> None:
        started = time.perf_counter()
        status, _, data = self._post("/kiosk/badge", {"token": signer.token})
        scanned = time.perf_counter()
        if status != 200:
            return results.error(f"POST /kiosk/badge: {status}")
        status, headers, _ = self.open(urlsplit(json.loads(data)["handoff_url"]).path)
        handed = time.perf_counter()
        location = urlsplit(headers.get("Location", "")).path
        if status != 302 or location != "/badges/home":
            return results.error(f"hand-off: {status} -> {location or '-'}")
        status, _, page = self.open(location)
        done = time.perf_counter()
        tiles = page.count(b'class="tile"')
        if status != 200 or tiles != signer.tiles:
            return results.error(f"GET /badges/home: {status}, {tiles} tiles of {signer.tiles}")
        results.add(done - started, scanned - started, handed - scanned, done - handed)


class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.total: list[float] = []
        self.steps: tuple[list[float], list[float], list[float]] = ([], [], [])
        self.errors: list[str] = []

    def add(self, total: float, *steps: float) -> None:
        with self.lock:
            self.total.append(total * 1000)
            for bucket, value in zip(self.steps, steps):
                bucket.append(value * 1000)

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)


# --- the phases -----------------------------------------------------------------------------

def trivial_phase(port: int, count: int, concurrency: int, deadline: float, path: str = TRIVIAL):
    """`count` GETs of `path` on `concurrency` keep-alive connections; latencies in ms."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    conns = [Connection(port) for _ in range(concurrency)]
    free = list(conns)

    def one(_):
        with lock:
            conn = free.pop()
        try:
            started = time.perf_counter()
            status, _, body = conn.request("GET", path)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                (latencies.append(elapsed) if status == 200 and body else errors.append(f"{path}: {status}"))
        except (OSError, http.client.HTTPException) as e:
            with lock:
                errors.append(f"{path}: {type(e).__name__}")
        finally:
            with lock:
                free.append(conn)

    run_threads(one, list(range(count)), concurrency, deadline)
    return latencies, errors


def rush_phase(kiosks: list[Kiosk], jobs: list[tuple[Kiosk, Signer]], concurrency: int,
               deadline: float) -> Results:
    """Every job is one sign-in; a device signs in one student at a time (its own lock)."""
    results = Results()
    locks = {id(k): threading.Lock() for k in kiosks}

    def one(job):
        kiosk, signer = job
        with locks[id(kiosk)]:
            try:
                kiosk.sign_in(signer, results)
            except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
                results.error(f"{type(e).__name__}: {e}")

    run_threads(one, jobs, concurrency, deadline)
    return results


def interleave(kiosks: list[Kiosk], skip: int = 0) -> list[tuple[Kiosk, Signer]]:
    """Jobs in the order a morning would bring them: devices take turns."""
    jobs = []
    longest = max(len(k.device.signers) for k in kiosks)
    for i in range(skip, longest):
        jobs += [(k, k.device.signers[i]) for k in kiosks if i < len(k.device.signers)]
    return jobs


# --- profiling ------------------------------------------------------------------------------

def redis_commands(url: str) -> int:
    """Commands the private redis-server has run so far (INFO commandstats)."""
    import redis
    client = redis.Redis.from_url(url)
    try:
        return sum(v["calls"] for k, v in client.info("commandstats").items())
    finally:
        client.close()


# --- main -----------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=400, help="measured sign-ins, each a different badge")
    p.add_argument("--students-total", type=int, default=5000)
    p.add_argument("--apps", type=int, default=20, help="apps added for the signers (beside the demo's)")
    p.add_argument("--concurrency", type=int, default=8, help="kiosks signing in at once")
    p.add_argument("--per-device", type=int, default=40,
                   help="sign-ins per device (the portal allows 60 per minute per device)")
    p.add_argument("--trivial", type=int, default=2000, help="requests of the trivial route")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="threads per worker (1: sync workers)")
    p.add_argument("--max-seconds", type=float, default=300, help="time limit of each phase")
    p.add_argument("--profile", action="store_true", help="also profile sign-ins in-process")
    args = p.parse_args(argv)
    if not 1 <= args.n <= args.students_total or args.concurrency < 1 or args.trivial < 1:
        p.error("--n must be between 1 and --students-total; --concurrency, --trivial at least 1")
    if not 1 <= args.per_device <= 50:
        p.error("--per-device must be between 1 and 50 (the portal allows 60 per minute)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from portal.devserver import RedisProcess, free_port

    work = Path(tempfile.mkdtemp(prefix="badge-rush-"))
    redis_proc = gunicorn = None
    try:
        redis_proc = RedisProcess(work / "redis").start()
        env = portal_env(work, redis_proc.url)
        from portal import create_app
        app = create_app()

        total = args.n + WARMUP
        print(f"demo district of {args.students_total:,} students; {total} badges "
              f"({WARMUP} for warm-up), {args.apps} apps for them ...", flush=True)
        started = time.monotonic()
        devices = build_district(app, args.students_total, total, args.apps, args.per_device,
                                 args.concurrency)
        print(f"  built in {time.monotonic() - started:.1f} s: {len(devices)} kiosk devices", flush=True)

        port = free_port()
        gunicorn = start_gunicorn(env, port, args.workers, work / "gunicorn.log", threads=args.threads)
        wait_until_up(port, gunicorn)
        kiosks = [Kiosk(port, d) for d in devices]
        for kiosk in kiosks:
            kiosk.bind()
        cores = len(os.sched_getaffinity(0))

        jobs = interleave(kiosks)
        warmup, measured = jobs[:WARMUP], jobs[WARMUP:]
        rush_phase(kiosks, warmup, args.concurrency, time.monotonic() + args.max_seconds)
        trivial_phase(port, 200, args.concurrency, time.monotonic() + args.max_seconds)

        cpu = process_cpu_seconds(gunicorn.pid)
        started = time.perf_counter()
        trivial, trivial_errors = trivial_phase(port, args.trivial, args.concurrency,
                                                time.monotonic() + args.max_seconds)
        trivial_wall = time.perf_counter() - started
        trivial_cpu = (process_cpu_seconds(gunicorn.pid) - cpu) / max(len(trivial), 1)

        cpu, commands = process_cpu_seconds(gunicorn.pid), redis_commands(redis_proc.url)
        started = time.perf_counter()
        results = rush_phase(kiosks, measured, args.concurrency, time.monotonic() + args.max_seconds)
        rush_wall = time.perf_counter() - started
        signins = len(results.total)
        signin_cpu = (process_cpu_seconds(gunicorn.pid) - cpu) / max(signins, 1)
        commands = (redis_commands(redis_proc.url) - commands - 1) / max(signins, 1)

        # For perspective: the cheapest real page (a template, a CSRF token, a new session).
        cpu = process_cpu_seconds(gunicorn.pid)
        login, login_errors = trivial_phase(port, args.trivial // 4, args.concurrency,
                                            time.monotonic() + args.max_seconds, LOGIN)
        login_cpu = (process_cpu_seconds(gunicorn.pid) - cpu) / max(len(login), 1)

        ratio = signin_cpu / trivial_cpu if trivial_cpu else float("nan")
        badge, handoff, home = results.steps
        print()
        print(f"load average        {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
        print(f"server              gunicorn -w {args.workers} --threads {args.threads} on 127.0.0.1, "
              f"{cores} cores shared with this client; SQLite; concurrency {args.concurrency}; "
              f"{len(kiosks)} devices, at most {args.per_device} sign-ins each; rate limits as configured")
        print(f"SIGN-INS            {signins} of {len(measured)} in {rush_wall:.2f} s = "
              f"{signins / rush_wall:.1f} per second; p50 {percentile(results.total, 50):.1f} ms, "
              f"p99 {percentile(results.total, 99):.1f} ms (badge -> hand-off -> tiles)")
        print(f"  steps p50/p99     POST /kiosk/badge {percentile(badge, 50):.1f}/{percentile(badge, 99):.1f} ms, "
              f"hand-off {percentile(handoff, 50):.1f}/{percentile(handoff, 99):.1f} ms, "
              f"/badges/home {percentile(home, 50):.1f}/{percentile(home, 99):.1f} ms")
        print(f"TRIVIAL             GET {TRIVIAL}: {len(trivial)} in {trivial_wall:.2f} s = "
              f"{len(trivial) / trivial_wall:.0f} per second; p50 {percentile(trivial, 50):.1f} ms, "
              f"p99 {percentile(trivial, 99):.1f} ms")
        print(f"server CPU          {signin_cpu * 1000:.2f} ms per sign-in, {trivial_cpu * 1000:.2f} ms "
              f"per trivial request, {login_cpu * 1000:.2f} ms per GET {LOGIN} (p99 "
              f"{percentile(login, 99):.1f} ms): a sign-in costs {signin_cpu / login_cpu:.1f} of those")
        print(f"Redis               {commands:.1f} commands per sign-in (those inside the rate limits' "
              f"Lua scripts and MULTI/EXEC included)")
        print(f"RATIO               a sign-in costs {ratio:.1f} trivial requests (aim <= {AIM:.0f}: "
              f"{'met' if ratio <= AIM else 'MISSED'})")
        errors = results.errors + trivial_errors + login_errors
        print(f"ERRORS              {len(errors)}")
        for line in sorted(set(errors))[:10]:
            print(f"    {line}")

        if args.profile:
            stop_process_group(gunicorn)
            gunicorn = None
            from bench.badge_profile import profile_sign_ins
            profile_sign_ins(app, [s for d in devices for s in d.signers][WARMUP:WARMUP + 105], TRIVIAL)
        return 0 if not errors else 1
    finally:
        stop_process_group(gunicorn)
        if redis_proc:
            redis_proc.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
