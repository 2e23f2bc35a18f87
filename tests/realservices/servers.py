"""Real PostgreSQL, Redis and gunicorn workers for the tests, on a unix socket or 127.0.0.1 only.

Every process started here dies with the test run (PR_SET_PDEATHSIG, set after any change of
user so the kernel keeps it) and is stopped by its fixture with a deadline. A missing server
binary fails the test when CI is set and skips it otherwise.
"""

from __future__ import annotations

import ctypes
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKER_SETTINGS = "tests.realservices.worker_settings"
_PR_SET_PDEATHSIG = 1


def require(what: str, found) -> None:
    """A missing real component: fail in CI (these tests are not optional there), skip locally."""
    if found:
        return
    message = (
        f"{what} not found; install it (Debian: apt-get install redis-server postgresql chromium; .ci/run does this)"
    )
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _die_with_parent(user: pwd.struct_passwd | None = None):
    def preexec():
        os.setsid()  # own process group: stop() signals the server and its children only
        if user is not None:
            os.setgid(user.pw_gid)
            os.initgroups(user.pw_name, user.pw_gid)
            os.setuid(user.pw_uid)
        try:  # after setuid: a credential change clears the parent-death signal
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:
            pass

    return preexec


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail}")
        if predicate():
            return
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise TimeoutError(f"{what} not ready after {timeout}s\n{tail}")


def stop_process(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


# --- PostgreSQL --------------------------------------------------------------------------------------


def postgres_bindir() -> Path | None:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(re.search(r"/(\d+)/bin", p).group(1))
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("postgres")
    return Path(found).parent if found else None


class PostgresServer:
    """A throwaway cluster: initdb in a temp dir, unix socket only (listen_addresses='')."""

    def __init__(self):
        self.bindir = postgres_bindir()
        self.user = None
        if os.geteuid() == 0:  # postgres refuses to run as root
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                self.user = None
        self.dir = Path(tempfile.mkdtemp(prefix="m2m-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.proc: subprocess.Popen | None = None
        self.superuser = self.user.pw_name if self.user else pwd.getpwuid(os.geteuid()).pw_name

    @property
    def host(self) -> str:
        return str(self.dir)  # the socket directory

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            preexec_fn=_die_with_parent(self.user),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=str(self.dir),
        )
        if result.returncode:
            raise RuntimeError(f"{args[0]} failed: {result.stdout}\n{result.stderr}")

    def start(self) -> PostgresServer:
        if self.user is not None:
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.dir.chmod(0o755)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            self.superuser,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        )
        return self.launch()

    def launch(self) -> PostgresServer:
        """Start the server on the existing cluster (also after ``halt()``: a restart)."""
        log = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen(
                [
                    str(self.bindir / "postgres"),
                    "-D",
                    str(self.data),
                    "-k",
                    str(self.dir),
                    "-c",
                    "listen_addresses=",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=60",
                    "-c",
                    "shared_buffers=32MB",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent(self.user),
                cwd=str(self.dir),
            )
        finally:
            log.close()
        wait_for(lambda: (self.dir / ".s.PGSQL.5432").exists() and self._accepts(), 30, "postgres", self.proc, self.log)
        return self

    def _accepts(self) -> bool:
        try:
            self.connect("postgres").close()
            return True
        except Exception:
            return False

    def connect(self, dbname: str):
        import psycopg

        return psycopg.connect(host=self.host, user=self.superuser, dbname=dbname, autocommit=True, connect_timeout=5)

    def create_database(self, name: str) -> str:
        with self.connect("postgres") as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def env(self, dbname: str) -> dict[str, str]:
        return {"TESTPROJECT_PG_HOST": self.host, "TESTPROJECT_PG_USER": self.superuser, "TESTPROJECT_PG_NAME": dbname}

    def halt(self) -> None:
        """Stop the server (fast shutdown: sessions are cut), keep the cluster (``launch()`` again)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # postgres: SIGTERM waits for every session to end
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                stop_process(self.proc, 5)

    def stop(self) -> None:
        stop_process(self.proc, 20)
        shutil.rmtree(self.dir, ignore_errors=True)


# --- Redis -------------------------------------------------------------------------------------------


class RedisServer:
    """redis-server on a unix socket (no TCP port), no persistence. Restartable on the same socket."""

    def __init__(self):
        self.binary = shutil.which("redis-server")
        self.dir = Path(tempfile.mkdtemp(prefix="m2m-redis-"))
        self.socket = self.dir / "redis.sock"
        self.log = self.dir / "redis.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> RedisServer:
        log = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    "0",
                    "--unixsocket",
                    str(self.socket),
                    "--unixsocketperm",
                    "700",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.dir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent(),
            )
        finally:
            log.close()
        wait_for(self.ping, 20, "redis-server", self.proc, self.log)
        return self

    def ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(1)
                sock.connect(str(self.socket))
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, *, cleanup: bool = True) -> None:
        stop_process(self.proc)
        self.proc = None
        if self.socket.exists():
            self.socket.unlink()
        if cleanup:
            shutil.rmtree(self.dir, ignore_errors=True)


# --- Django processes --------------------------------------------------------------------------------


def django_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TESTPROJECT_", "DJANGO_", "M2M_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": WORKER_SETTINGS,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO),
            "DJANGO_SUPERUSER_PASSWORD": "admin-pw",
        }
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "testproject" / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(REPO),
        preexec_fn=_die_with_parent(),
    )


class Worker:
    """One gunicorn server (one sync worker process) on its own 127.0.0.1 port."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path):
        self.name = name
        self.env = env
        self.port = free_port()
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Worker:
        log = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--workers",
                    "1",
                    "--worker-class",
                    "sync",
                    "--timeout",
                    "60",
                    "--graceful-timeout",
                    "5",
                    "--access-logfile",
                    "-",
                    "--chdir",
                    str(REPO),
                    "tests.realservices.wsgi:application",
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent(),
                cwd=str(REPO),
            )
        finally:
            log.close()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        import requests

        def ready():
            try:
                return requests.get(self.url + "/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, timeout, f"worker {self.name}", self.proc, self.log)

    def stop(self) -> None:
        stop_process(self.proc)
