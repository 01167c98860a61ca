"""Benchmark the OneRoster import: a large demo district into a fresh database, twice.

    .venv/bin/python bench/roster_import.py                      # 100,000 students on SQLite
    .venv/bin/python bench/roster_import.py --students 20000
    .venv/bin/python bench/roster_import.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Times the first import and a re-import with no changes, and, as a baseline measured in the same
run, merely reading the bundle's CSV files with the csv module, so the figures read as ratios.
On PostgreSQL the run gets a private schema, dropped at the end. Aim (2-core machine):
first import under 60 s, re-import under 20 s, at 100,000 students.
"""
from __future__ import annotations

import argparse
import csv
import os
import resource
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from portal import create_app  # noqa: E402
from portal.config import LOGIN_LIMIT_PER_ACCOUNT, LOGIN_LIMIT_PER_ADDRESS, Settings  # noqa: E402
from portal.migrate import upgrade  # noqa: E402

FILES = ("academicSessions", "orgs", "courses", "classes", "users", "enrollments")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def read_with_csv_module(folder: Path) -> int:
    """The floor: read every row of the bundle with the csv module and do nothing with it."""
    rows = 0
    for name in FILES:
        with open(folder / f"{name}.csv", newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            next(reader)
            for _ in reader:
                rows += 1
    return rows


def settings_for(url: str, instance: Path) -> Settings:
    return Settings(
        env="testing", instance_path=instance, secret_key=secrets.token_urlsafe(32),
        database_url=url, redis_url="redis://127.0.0.1:1/0",  # import does not touch Redis
        session_idle_minutes=60, session_max_hours=12,
        login_limit_per_account=LOGIN_LIMIT_PER_ACCOUNT,
        login_limit_per_address=LOGIN_LIMIT_PER_ADDRESS, trusted_proxies=0)


def database(base_url: str | None, tmp: Path):
    """A fresh database URL, and a function that drops it."""
    if not base_url:
        return f"sqlite:///{tmp / 'bench.sqlite3'}", lambda: None
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base_url else "?"

    def drop():
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return f"{base_url}{sep}options=-csearch_path%3D{schema}", drop


CPU = {}  # label -> processor seconds of this process (the machine may be busy with others)


def backend_cpu(db) -> tuple[int, float] | None:
    """(pid, processor seconds) of the PostgreSQL backend serving the session, if it is local."""
    if db.engine.dialect.name != "postgresql":
        return None
    pid = db.session.execute(text("select pg_backend_pid()")).scalar()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return pid, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(fn, label=None):
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    if label:
        CPU[label] = time.process_time() - cpu
    return time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--sections", type=int, default=None,
                        help="default: one per 20 students (5,000 for 100,000)")
    parser.add_argument("--per-student", type=int, default=5, help="sections per student")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL base URL; default: a new SQLite file in a temp dir")
    args = parser.parse_args()
    sections = args.sections or max(1, args.students // 20)

    with tempfile.TemporaryDirectory(prefix="roster-bench-") as tmp_name:
        tmp = Path(tmp_name)
        from portal.roster.demo import write_bundle
        bundle = tmp / "bundle"
        t_write, sizes = timed(lambda: write_bundle(bundle, args.students, sections=sections,
                                                    per_student=args.per_student))
        mb = sum(f.stat().st_size for f in bundle.iterdir()) / 1e6
        print(f"bundle: {sizes.schools} schools, {sizes.students:,} students, "
              f"{sizes.teachers:,} teachers, {sizes.sections:,} sections, "
              f"{sizes.enrollments:,} enrollments; {mb:.0f} MB of CSV (written in {t_write:.1f} s)")

        t_csv, rows = timed(lambda: read_with_csv_module(bundle), "csv")
        url, drop = database(args.database_url, tmp)
        try:
            engine = create_engine(url)
            upgrade(engine)
            engine.dispose()
            app = create_app({"SETTINGS": settings_for(url, tmp / "instance")})
            from portal.db import db
            from portal.models import Enrollment, Person
            from portal.roster import import_roster
            with app.app_context():
                print(f"database: {db.engine.dialect.name} ({db.engine.url.render_as_string()})")
                server = {}
                for key in ("first", "again"):
                    before = backend_cpu(db)
                    seconds, summary = timed(lambda: import_roster(db.session, bundle), key)
                    after = backend_cpu(db)
                    if before and after and before[0] == after[0]:
                        server[key] = after[1] - before[1]
                    if key == "first":
                        t_first, first, rss_first = seconds, summary, peak_rss_mb()
                    else:
                        t_again, again = seconds, summary
                counts = (db.session.scalar(select(func.count(Person.id))),
                          db.session.scalar(select(func.count(Enrollment.id))))
                db.session.remove()
                db.engine.dispose()
        finally:
            drop()

    assert first["enrollments"].created == sizes.enrollments, first.as_dict()
    assert not again.changed, again.as_dict()
    print(f"in the database: {counts[0]:,} people, {counts[1]:,} enrollments")
    print()
    # cpu s: this process's processor time; db cpu s: the PostgreSQL backend's (when local).
    # On a busy machine wall-clock seconds grow while processor seconds stay put.
    print(f"{'':34} {'seconds':>8} {'rows/s':>10} {'x csv':>6} {'cpu s':>6} {'db cpu s':>8}")
    for label, key, seconds in (("read the CSV with the csv module", "csv", t_csv),
                                ("first import", "first", t_first),
                                ("re-import, nothing changed", "again", t_again)):
        db_cpu = f"{server[key]:8.1f}" if key in server else f"{'-':>8}"
        print(f"{label:34} {seconds:8.1f} {rows / seconds:10,.0f} {seconds / t_csv:6.1f} "
              f"{CPU[key]:6.1f} {db_cpu}")
    print(f"{rows:,} rows; peak RSS {rss_first:,.0f} MB after the first import, "
          f"{peak_rss_mb():,.0f} MB at the end")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at the end: {load} ({os.cpu_count()} processors)")
    if args.students < 100_000:
        return 0
    ok = t_first < 60 and t_again < 20
    print("aim at 100,000 students (first < 60 s, re-import < 20 s):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
