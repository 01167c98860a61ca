"""Local helpers for `make run` and the tests: a private redis-server on a free port."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from portal.config import private_folder


def free_port() -> int:
    """Ask the kernel for a free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:`port` (a socket in TIME_WAIT does not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def stop_process(proc: subprocess.Popen | None, timeout: float = 5) -> None:
    """Ask a process we started to stop; kill it if it has not within `timeout` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class RedisProcess:
    """A redis-server of our own, listening on 127.0.0.1 only. With `persist` (make run's) it
    keeps its data in an append-only file (data_dir/appendonlydir/), written to disk every
    second: a snapshot would bring back, after a crash, what had ended since it was taken
    (sessions signed out, one-time codes spent)."""

    def __init__(self, data_dir: Path, port: int | None = None, persist: bool = False):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.persist = persist
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "RedisProcess":
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed. On Debian: apt-get install redis-server")
        private_folder(self.data_dir)  # sessions live here: nobody else reads them
        args = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
                "--protected-mode", "yes", "--loglevel", "warning", "--save", ""]
        args += (["--appendonly", "yes", "--appendfsync", "everysec"] if self.persist
                 else ["--appendonly", "no"])
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None
