"""Real processes for the nginx end-to-end test: service-b (Django, WSGI) and nginx in front of it."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from string import Template

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


def find_nginx() -> str | None:
    for path in NGINX_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("nginx")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class ServiceB:
    """tests.nginx_support.serve in a subprocess: its own SQLite file and file cache in ``tmp``."""

    def __init__(self, tmp: Path, m2m_settings: dict):
        (tmp / "cache").mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "DJANGO_SETTINGS_MODULE": "tests.nginx_support.settings",
            "NGINX_TEST_SQLITE": str(tmp / "service-b.sqlite3"),
            "NGINX_TEST_CACHE_DIR": str(tmp / "cache"),
            "NGINX_TEST_M2M": json.dumps(m2m_settings),
        }
        self.log = open(tmp / "service-b.log", "w+")  # noqa: SIM115 -- closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "serve.py")],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.port = self._wait_ready()

    def _wait_ready(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()  # the only line it prints
                if line.startswith("READY "):
                    return int(line.split()[1])
                break
        _stop(self.proc)
        raise RuntimeError(f"service-b did not start:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self) -> None:
        _stop(self.proc)
        self.proc.stdout.close()
        self.log.close()


class Nginx:
    """nginx -p tmp -c tmp/nginx.conf, listening with TLS on 127.0.0.1:<port>, proxying to service-b."""

    def __init__(self, binary: str, tmp: Path, backend_port: int, attempts: int = 3):
        self.binary, self.tmp = binary, tmp
        for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (tmp / name).mkdir(exist_ok=True)
        last_error = ""
        for _ in range(attempts):  # the free port may be taken between probing and binding
            self.port = free_port()
            conf = Template((HERE / "nginx.conf.template").read_text()).substitute(
                tmp=str(tmp),
                port=self.port,
                backend_port=backend_port,
                # As root, workers would run as nobody, who cannot read the keys in a private tmp dir.
                user_line="user root;" if os.geteuid() == 0 else "",
            )
            (tmp / "nginx.conf").write_text(conf)
            self.proc = subprocess.Popen(
                [
                    binary,
                    "-p",
                    str(tmp),
                    "-e",
                    str(tmp / "error.log"),
                    "-c",
                    str(tmp / "nginx.conf"),
                    "-g",
                    "daemon off;",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            if self._wait_listening():
                return
            _stop(self.proc, signal.SIGQUIT)
            last_error = self.error_log()
        raise RuntimeError(f"nginx did not start:\n{last_error}")

    def _wait_listening(self) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def error_log(self) -> str:
        path = self.tmp / "error.log"
        stderr = self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""
        return stderr + (path.read_text(errors="replace")[-4000:] if path.exists() else "")

    def stop(self) -> None:
        _stop(self.proc, signal.SIGQUIT)  # graceful: workers finish, then the master exits
        self.proc.stderr.close()
