"""The floor under the launch and badge aims: what the storage work each path must do costs,
with the portal's own stores and libraries, before any HTTP, Flask, Authlib, XML or template code.

    .venv/bin/python bench/floor.py [--n 2000] [--rounds 5]

The aims of bench/launch.py and bench/badge_rush.py are ratios to a trivial route measured in the
same run. Each path must also do some storage work that the trivial route (a static file) does
not, and that no implementation can skip without dropping a point of its issue. This prints what
that work alone costs here, so the aims can be read against it:

  token exchange (issue 3)  must sign 1 ID token; must take the code from Redis (codes live in
                            Redis and are single-use), store the access token in Redis (userinfo
                            reads it), and record the release (every launch records an audit event,
                            in the database: it must outlive a Redis restart). The client's secret
                            and the person are counted as free (as if cached in the process).
  SAML launch (issue 3)     must sign the Assertion and the Response; must read the session (who is
                            signed in), one row (the person with their grant: a student never
                            receives a launch not granted to them), and record the release.
  badge sign-in (issue 4)   three requests (the kiosk's POST, the hand-off in the browser, the
                            tiles), each at least a trivial request; and: the device and the badge
                            (2 rows), the per-device and per-badge limits (1 Redis round trip, both
                            in one pipeline), ending the device's previous session and saving the
                            hand-off (1, pipelined), the badge's last use (1 commit, like an
                            audit event), taking the hand-off (1), storing the new session (1),
                            reading it on the tiles page (1), and the person with their tiles (1 row).

Each count is the fewest round trips a correct implementation could make; the portal makes more
(see bench/launch.py and bench/badge_rush.py for what it costs as built). Server CPU of the trivial
route is measured as bench/launch.py does (gunicorn -w 2, one keep-alive connection, /proc/<pid>/stat);
the rest in this process (time.process_time: the client side of Redis, all of SQLite) with the
portal's own engine, Redis client and audit.record, on a private redis-server and a SQLite file.
Every loop is bounded in count and time; everything listens on 127.0.0.1 only and is stopped at
the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.launch import get, run_phase, signature_ms  # noqa: E402
from bench.serving import Browser, portal_env, start_gunicorn, stop_process_group, wait_until_up  # noqa: E402

STATIC = "/static/css/portal.css"


def per_op_ms(fn, n: int, rounds: int, max_seconds: float) -> float:
    """Median over rounds of the CPU milliseconds of one call of fn (n calls in all, at most)."""
    results, deadline, per_round = [], time.monotonic() + max_seconds, max(1, n // rounds)
    for _ in range(rounds):
        t0 = time.process_time()
        for _ in range(per_round):
            fn()
        results.append(1000 * (time.process_time() - t0) / per_round)
        if time.monotonic() > deadline:
            break
    return statistics.median(results)


def trivial_ms(env: dict, tmp: Path, n: int, rounds: int, max_seconds: float) -> float:
    """Server CPU per request of the trivial route, under gunicorn as bench/launch.py runs it."""
    from portal.devserver import free_port
    port = free_port()
    gunicorn = start_gunicorn(env, port, 2, tmp / "gunicorn.log")
    try:
        wait_until_up(port, gunicorn)
        browser, static = [Browser(port)], get(STATIC, 200)
        run_phase("warm-up", browser, gunicorn.pid, 20, max_seconds, static)
        return statistics.median(run_phase("trivial", browser, gunicorn.pid, max(1, n // rounds),
                                           max_seconds, static).cpu_ms for _ in range(rounds))
    finally:
        stop_process_group(gunicorn)


def storage_ms(n: int, rounds: int, max_seconds: float) -> dict[str, float]:
    """CPU milliseconds of one of each storage operation, with the portal's own clients."""
    from sqlalchemy import bindparam, select

    from portal import audit, create_app
    from portal.db import db
    from portal.migrate import upgrade
    from portal.models import App, Person
    from portal.roster.demo import DEMO_STUDENT, load_demo

    app = create_app()
    figures = {}
    with app.app_context():
        upgrade(db.engine)
        load_demo(db.session, students=60)
        redis = app.extensions["redis"]
        person = db.session.scalar(select(Person).where(Person.username == DEMO_STUDENT.username))
        launched = db.session.scalar(select(App).order_by(App.id).limit(1))
        person_id, record = person.id, b"x" * 300  # a code's or a hand-off's record, about this size
        by_id = select(Person).where(Person.id == bindparam("person_id"))
        names = iter(range(10 ** 9))

        def redis_set():
            redis.set(f"bench:floor:{next(names) % 64}", record, ex=60)

        def redis_get():
            redis.get("bench:floor:0")

        def row():
            db.session.expunge_all()  # a request starts with an empty identity map
            db.session.scalar(by_id, {"person_id": person_id})

        # audit.record reads only their ids: plain objects, so a commit has nothing to expire
        who, which = SimpleNamespace(id=person.id), SimpleNamespace(id=launched.id)
        db.session.rollback()

        def event():
            audit.record("launch", person=who, app=which,
                         data={"protocol": "oidc", "fields": ["sub", "given_name"]})

        for fn in (redis_set, redis_get, row, event):  # warm: statements, connections
            for _ in range(20):
                fn()
        each = max_seconds / 4
        figures["redis"] = min(per_op_ms(redis_set, n, rounds, each), per_op_ms(redis_get, n, rounds, each))
        figures["row"] = per_op_ms(row, n, rounds, each)
        figures["event"] = per_op_ms(event, n, rounds, each)
        db.session.remove()
        db.engine.dispose()
    return figures


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=2000, help="calls of each operation (and trivial requests)")
    p.add_argument("--rounds", type=int, default=5, help="batches; each figure is their median")
    p.add_argument("--max-seconds", type=float, default=60.0, help="time limit of each measurement")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from portal.devserver import RedisProcess

    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-floor-"))
    redis_proc = None
    try:
        redis_proc = RedisProcess(tmp / "redis").start()
        env = portal_env(tmp, redis_proc.url)
        print(f"measuring in {tmp} ...", flush=True)
        ops = storage_ms(args.n, args.rounds, args.max_seconds)
        ops["sign"] = signature_ms(batches=args.rounds, max_seconds=args.max_seconds)
        trivial = trivial_ms(env, tmp, args.n, args.rounds, args.max_seconds)
    finally:
        if redis_proc:
            redis_proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    sig = ops["sign"]
    print(f"\n{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; CPU ms, medians of {args.rounds} batches")
    print(f"  trivial route, GET {STATIC} under gunicorn    {trivial:7.3f}")
    print(f"  one RSA-2048 PKCS#1 v1.5 SHA-256 signature          {sig:7.3f}")
    print(f"  one Redis round trip (redis-py, client side)        {ops['redis']:7.3f}")
    print(f"  one row by primary key (SQLAlchemy ORM, SQLite)     {ops['row']:7.3f}")
    print(f"  one audit event (portal.audit.record, INSERT+COMMIT) {ops['event']:6.3f}")

    def storage(redis=0, rows=0, events=0):
        return redis * ops["redis"] + rows * ops["row"] + events * ops["event"]

    token = sig + storage(redis=2, events=1)
    saml = 2 * sig + storage(redis=1, rows=1, events=1)
    badge = 3 * trivial + storage(redis=5, rows=3, events=1)
    # (path, its floor, its aim, CPU the aim leaves for everything but signing and storage)
    paths = [
        ("token exchange", f"trivial + {token / sig:.2f} signatures", "trivial + 1.5 signatures", 1.5 * sig - token),
        ("SAML launch", f"trivial + {saml / sig:.2f} signatures", "trivial + 2.5 signatures", 2.5 * sig - saml),
        ("badge sign-in", f"{badge / trivial:.2f} trivial requests", "4 trivial requests", 4 * trivial - badge),
    ]
    print("\nthe floor of each path (signatures and storage only; no HTTP, framework or protocol code),"
          " and the CPU its aim leaves for all the rest:")
    for name, floor, aim, left in paths:
        verdict = "the floor is above the aim" if left < 0 else "room left under the aim"
        print(f"  {name:15} floor {floor:30} aim at most {aim:26} left {left:+7.3f} ms "
              f"({left / trivial:+.2f} trivial)  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
