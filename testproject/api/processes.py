"""Start the issuer and the APIs as separate local processes, run operator commands, stop them.

Used by ``manage.py demo`` and by the end-to-end tests. Every child binds 127.0.0.1, has its own
temporary SQLite database and cache directory, exits by itself when its parent goes away, and is
waited for with a deadline.
"""

from __future__ import annotations

import json
import os
import select
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

MANAGE = Path(__file__).resolve().parent.parent / "manage.py"
SETTINGS = "testproject.api.service_settings"


class ServiceError(RuntimeError):
    pass


_handed_out: set[int] = set()


def free_port() -> int:
    """A port free on 127.0.0.1 now, and never one this process already handed out."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise ServiceError("no free port on 127.0.0.1")


class Service:
    """One process of the test project serving one role (``issuer``, ``api``, ``reports``...).

    ``settings`` names its Django settings module (service-b's by default); ``migrate=False``
    for a process whose own database holds nothing it uses.
    """

    def __init__(
        self,
        role: str,
        workdir: Path,
        *,
        env: dict[str, str] | None = None,
        name: str | None = None,
        settings: str = SETTINGS,
        migrate: bool = True,
    ):
        self.role = role
        self.settings = settings
        self.migrate = migrate
        self.name = name or role
        self.dir = Path(workdir) / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.extra_env = dict(env or {})
        self.port = free_port()  # chosen now: the issuer's URL (and so every iss) includes it
        self.proc: subprocess.Popen | None = None
        self.log_path = self.dir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DJANGO_SETTINGS_MODULE", None)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": self.settings,
                "TESTPROJECT_ROLE": self.role,
                "TESTPROJECT_SQLITE": str(self.dir / "db.sqlite3"),
                "TESTPROJECT_CACHE_DIR": str(self.dir / "cache"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, *, seed: Path | None = None) -> None:
        """Spawn the server (migrating and seeding its own database first); do not wait."""
        args = [sys.executable, str(MANAGE), "serve", "--port", str(self.port)]
        if self.migrate:
            args.append("--migrate")
        if seed:
            args += ["--seed", str(seed)]
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                args,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(MANAGE.parent.parent),
            )
        finally:
            log.close()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll the server's index page until it answers, the child dies, or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise ServiceError(f"{self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def manage(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Run ``manage.py ARGS`` against this service's database and cache, as its operator would."""
        done = subprocess.run(
            [sys.executable, str(MANAGE), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd=str(MANAGE.parent.parent),
        )
        if done.returncode != 0:
            raise ServiceError(f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return done

    def console(self) -> OperatorConsole:
        """A warm ``manage.py operator_console`` for this service: commands run without a new Django."""
        with open(self.dir / "console.log", "ab") as log:
            return OperatorConsole(
                subprocess.Popen(
                    [sys.executable, str(MANAGE), "operator_console"],
                    env=self.env(),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                    cwd=str(MANAGE.parent.parent),
                )
            )

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)


def start_all(services: list[Service], seed: Path | None = None, timeout: float = 30.0) -> None:
    """Start services in parallel and wait for all; stop them all if one fails."""
    try:
        for service in services:
            service.start(seed=seed)
        for service in services:
            service.wait_ready(timeout)
    except BaseException:
        for service in services:
            service.stop()
        raise


class OperatorConsole:
    """Feeds commands to a running ``operator_console``; each answer is awaited with a deadline."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc

    def run(self, *args: str, timeout: float = 30.0) -> str:
        self.proc.stdin.write(shlex.join(args) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            raise ServiceError(f"manage.py {shlex.join(args)}: no answer within {timeout:.0f}s")
        answer = json.loads(line)
        if answer["rc"] != 0:
            raise ServiceError(f"manage.py {shlex.join(args)} failed ({answer['rc']}): {answer['out'][-2000:]}")
        return answer["out"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pipe in (self.proc.stdin, self.proc.stdout):  # no pipe left for the GC to warn about
            if pipe is not None and not pipe.closed:
                pipe.close()
