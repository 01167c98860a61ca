"""Load helpers shared by the rush benchmarks: a bounded pool of client threads, percentiles."""
from __future__ import annotations

import threading
import time


def run_threads(target, jobs: list, concurrency: int, deadline: float) -> None:
    """Run target(job) for every job on `concurrency` threads, stopping at the deadline."""
    lock = threading.Lock()
    queue = list(reversed(jobs))

    def worker():
        while time.monotonic() < deadline:
            with lock:
                if not queue:
                    return
                job = queue.pop()
            target(job)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()) + 35)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]
