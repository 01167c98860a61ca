"""The portal under gunicorn for the benchmarks: start, wait, measure its CPU, stop; and the
clients that load it (a keep-alive connection, and a browser with its cookies)."""
from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def portal_env(folder: Path, redis_url: str, database_url: str | None = None, **extra: str) -> dict:
    """The environment of a benchmark's portal: development settings, an instance folder and a
    SQLite file (unless database_url) under `folder`, and a private Redis; set in this process too,
    so that creating the app here writes the instance secrets once, before workers race to."""
    env = {**os.environ, "PORTAL_ENV": "development", "PORTAL_INSTANCE_PATH": str(folder / "instance"),
           "PORTAL_DATABASE_URL": database_url or f"sqlite:///{folder / 'portal.sqlite3'}",
           "PORTAL_REDIS_URL": redis_url, **extra}
    os.environ.update({k: v for k, v in env.items() if k.startswith("PORTAL_")})
    return env


def start_gunicorn(env: dict, port: int, workers: int, log: Path,
                   threads: int | None = None) -> subprocess.Popen:
    """Start `gunicorn portal.wsgi:app` on 127.0.0.1:port in a process group of its own."""
    args = [sys.executable, "-m", "gunicorn", "-w", str(workers)]
    if threads:
        args += ["--threads", str(threads)]
    args += ["-b", f"127.0.0.1:{port}", "--log-level", "warning", "portal.wsgi:app"]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_until_up(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("gunicorn stopped during start-up (see its log)")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/login")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer on 127.0.0.1:{port} within {timeout:.0f} s")


def stop_process_group(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)  # gunicorn and its workers, which we started
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def process_cpu_seconds(root_pid: int) -> float:
    """User + system CPU of a process and its children (gunicorn master and workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = {root_pid}
    children = Path(f"/proc/{root_pid}/task/{root_pid}/children")
    if children.exists():
        pids |= {int(p) for p in children.read_text().split()}
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


class Connection:
    """One keep-alive HTTP connection that reconnects when the server closed an idle one."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.used = False

    def request(self, method: str, path: str, body: str | bytes | None = None, headers=None):
        """Send one request; return (status, headers, body)."""
        headers = headers or {}
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not self.used:
                raise
            # The server closed an idle keep-alive connection: a browser reconnects and resends.
            self.conn.close()
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        self.used = True
        return response.status, response.headers, response.read()


class Browser(Connection):
    """A connection with a browser's cookie jar: cookies kept per path, dropped when expired."""

    def __init__(self, port: int):
        super().__init__(port)
        self.cookies: dict[str, tuple[str, str]] = {}   # name -> (value, path)

    def request(self, method: str, path: str, body: str | bytes | None = None, headers=None, *,
                cookies: bool = True):
        """Send one request with this browser's cookies (cookies=False: as an app's server
        would, without them); a string body is a posted form."""
        headers = dict(headers or {})
        if isinstance(body, str):
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        jar = "; ".join(f"{k}={v}" for k, (v, p) in self.cookies.items() if path.startswith(p))
        if cookies and jar:
            headers["Cookie"] = jar
        status, response_headers, data = super().request(method, path, body, headers)
        if cookies:
            for header in response_headers.get_all("Set-Cookie") or ():
                pair, *attrs = [part.strip() for part in header.split(";")]
                name, _, value = pair.partition("=")
                where = next((a[5:] for a in attrs if a.lower().startswith("path=")), "/")
                if not value or any(a.lower() == "max-age=0" or "1970" in a for a in attrs):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = (value, where)
        return status, response_headers, data

    def cookie(self, name: str) -> str:
        return self.cookies.get(name, ("", "/"))[0]
