"""make run's Redis keeps its data in an append-only file: a crash loses at most a second, and
brings back nothing that had ended before it."""
from __future__ import annotations

import time

import redis

from portal.devserver import RedisProcess


def test_make_runs_redis_comes_back_from_a_crash_as_it_was_a_second_before(tmp_path):
    # Found by the operations review: it kept snapshots only (save 60 1), so after a crash it
    # came back as it was at the last one, up to a minute before: a session signed out since (a
    # void's, a sign-out's), an OpenID code spent since, all there again.
    proc = RedisProcess(tmp_path / "redis", persist=True).start()
    client = redis.Redis(port=proc.port)
    try:
        client.set("portal:session:ended", "signed in")
        client.save()                              # a snapshot, as one is taken now and then
        client.delete("portal:session:ended")      # signed out
        client.set("portal:session:new", "signed in")
        time.sleep(1.5)                            # appendfsync everysec
        proc.proc.kill()                           # a crash: nothing saved on the way out
        proc.proc.wait()
        proc.start()
        assert client.get("portal:session:ended") is None
        assert client.get("portal:session:new") == b"signed in"
        assert (tmp_path / "redis" / "appendonlydir").is_dir()
    finally:
        client.close()
        proc.stop()
