"""bench/badge_rush.py --profile: the badge sign-ins again in this process, step by step (CPU and
SQL statements), then cProfile's view of the portal's own functions."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from bench.badge_rush import Signer

ROOT = Path(__file__).resolve().parent.parent


def profile_sign_ins(app, signers: list[Signer], trivial: str, top: int = 25) -> None:
    """Sign-ins again in this process (Flask test clients, the same database and Redis), on new
    devices (the rush's used their per-minute allowance): CPU and SQL statements per step,
    then cProfile's view of the portal's own functions."""
    import cProfile
    import io
    import pstats

    from sqlalchemy import event

    from portal.badges.kiosks import create_pairing_code, enroll_device
    from portal.db import db
    from portal.models import School

    # Each signer signs in twice below: a device per 20 signers stays under 60 per minute.
    groups = {}
    for i, signer in enumerate(signers):
        groups.setdefault((signer.school_id, i // 20), []).append(signer)
    device_of, credentials = {}, {}
    with app.app_context():
        engine = db.engine
        for key, group in groups.items():
            school = db.session.get(School, key[0])
            code = create_pairing_code(db.session, app.extensions["redis"], school).code
            credentials[key] = enroll_device(db.session, app.extensions["redis"], code).credential
            device_of.update({id(s): key for s in group})
        db.session.remove()
    api, browsers = app.test_client(), {}
    for key, credential in credentials.items():
        browser = browsers[key] = app.test_client()
        answer = api.post("/kiosk/bind", json={}, headers={"Authorization": f"Bearer {credential}"})
        browser.get(urlsplit(answer.json["bind_url"]).path)

    steps = ("POST /kiosk/badge", "hand-off", "GET /badges/home")
    cpu, sql = dict.fromkeys(steps, 0.0), dict.fromkeys(steps, 0)
    current = [None]

    def count(*_):
        if current[0]:
            sql[current[0]] += 1

    def step(name, call):
        current[0] = name
        started = time.process_time()
        response = call()
        cpu[name] += time.process_time() - started
        current[0] = None
        return response

    def sign_in(signer):
        key = device_of[id(signer)]
        browser = browsers[key]
        answer = step(steps[0], lambda: api.post(
            "/kiosk/badge", json={"token": signer.token},
            headers={"Authorization": f"Bearer {credentials[key]}"}))
        assert answer.status_code == 200, answer.status_code
        handed = step(steps[1], lambda: browser.get(urlsplit(answer.json["handoff_url"]).path))
        assert handed.status_code == 302, handed.status_code
        assert step(steps[2], lambda: browser.get("/badges/home")).status_code == 200

    for signer in signers[:5]:             # warm
        sign_in(signer)
    measured = signers[5:]
    cpu, sql = dict.fromkeys(steps, 0.0), dict.fromkeys(steps, 0)
    event.listen(engine, "before_cursor_execute", count)
    for signer in measured:
        sign_in(signer)
    event.remove(engine, "before_cursor_execute", count)
    static = app.test_client()
    started = time.process_time()
    for _ in range(500):
        static.get(trivial).close()
    static_cpu = (time.process_time() - started) / 500
    n = max(1, len(measured))
    total = sum(cpu.values()) / n
    print(f"\nPROFILE in this process (Flask test client, no HTTP server; {n} sign-ins, each badge "
          f"scanned again): {total * 1000:.2f} ms CPU per sign-in, {static_cpu * 1000:.2f} ms per "
          f"static file (ratio {total / static_cpu:.1f})")
    for name in steps:
        print(f"  {name:18s} {cpu[name] / n * 1000:5.2f} ms CPU, {sql[name] / n:.1f} SQL statements")

    profiler = cProfile.Profile()
    profiler.enable()
    for signer in measured:
        sign_in(signer)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(r"/portal/", top)
    print(f"cProfile, the portal's own functions by cumulative time ({n} sign-ins):")
    print(out.getvalue().replace(str(ROOT) + "/", ""))
