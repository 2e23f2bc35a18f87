"""Fixtures for the real-service tests: PostgreSQL, Redis, a fake issuer and fleets of gunicorn workers.

A *deployment* is several gunicorn servers (one sync worker process each, each on its own
127.0.0.1 port, so a test can address every worker) sharing one database and one cache:
PostgreSQL + Redis, or SQLite + a file cache (the embedded default).
"""

from __future__ import annotations

import math
import re
import shutil
import time
from pathlib import Path

import pytest

from .servers import PostgresServer, RedisServer, Worker, django_env, manage, postgres_bindir, require

INTERVAL = 1.0  # REVOCATION_CHECK_INTERVAL in the workers (the default)
WORKERS = 3


@pytest.fixture(scope="session")
def postgres():
    require("PostgreSQL (postgres binary)", postgres_bindir())
    try:
        import psycopg  # noqa: F401
    except ImportError:
        require("psycopg (pip install -e '.[test]')", False)
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server():
    require("redis-server", shutil.which("redis-server"))
    try:
        import redis  # noqa: F401
    except ImportError:
        require("redis-py (pip install -e '.[test]')", False)
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def issuer():
    """A fake issuer whose JWKS is served over HTTP on 127.0.0.1 to every worker."""
    from drf_m2m_auth.testing import JWKSServer

    server = JWKSServer()
    yield server
    server.stop()


class Deployment:
    def __init__(self, name: str, env: dict, workers: list[Worker], issuer, workdir: Path):
        self.name = name
        self.env = env
        self.workers = workers
        self.issuer = issuer
        self.workdir = workdir
        self._sessions: dict = {}

    # --- tokens and API calls --------------------------------------------------------------------

    def token(self, client_id: str, scopes=("read:orders",), **claims) -> str:
        fake = self.issuer.fake
        return fake.token(sub=f"{client_id}@clients", scopes=scopes, **claims)

    def fresh_token(self, client_id: str, **claims) -> str:
        """A token issued after now, whatever the sub-second part of a revocation moment was."""
        return self.token(client_id, iat=math.ceil(time.time()) + 1, **claims)

    def status(self, worker: Worker, path: str, token: str) -> int:
        import requests

        return requests.get(f"{worker.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code

    def statuses(self, path: str, token: str) -> list[int]:
        return [self.status(w, path, token) for w in self.workers]

    def wait_everywhere(
        self, path: str, token: str, expected: int, since: float, timeout: float = 15.0
    ) -> dict[str, float]:
        """Poll every worker (about every 10 ms) until each answers ``expected``; seconds per worker."""
        import requests

        seen: dict[str, float] = {}
        session = requests.Session()
        deadline = since + timeout
        while len(seen) < len(self.workers) and time.monotonic() < deadline:
            for worker in self.workers:
                if worker.name in seen:
                    continue
                code = session.get(
                    f"{worker.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
                ).status_code
                assert code in (expected, 200, 401, 403), f"{worker.name} answered {code}"
                if code == expected:
                    seen[worker.name] = time.monotonic() - since
            time.sleep(0.01)
        session.close()
        missing = [w.name for w in self.workers if w.name not in seen]
        assert not missing, f"{missing} never answered {expected} within {timeout}s"
        return seen

    # --- operator tools ----------------------------------------------------------------------------

    def manage(self, *args: str, check: bool = True):
        result = manage(self.env, *args)
        if check:
            assert result.returncode == 0, f"manage.py {' '.join(args)}: {result.stdout}\n{result.stderr}"
        return result

    def admin_session(self, worker: Worker):
        """A logged-in admin session on ``worker`` (kept for the deployment's lifetime)."""
        import requests

        if worker.name in self._sessions:
            return self._sessions[worker.name]
        session = requests.Session()
        login = f"{worker.url}/admin/login/"
        session.get(login, timeout=10)
        response = session.post(
            login,
            data={
                "username": "admin",
                "password": "admin-pw",
                "next": "/admin/",
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            timeout=10,
        )
        assert response.status_code == 200 and "/admin/login/" not in response.url, response.text[:500]
        self._sessions[worker.name] = session
        return session

    def register(self, client_id: str, *resources: str, worker: Worker | None = None) -> dict[str, float]:
        """Add a client with grants through the admin's add form (an operator's first step)."""
        worker = worker or self.workers[0]
        session = self.admin_session(worker)
        data = {
            "client_id": client_id,
            "name": client_id,
            "description": "",
            "is_active": "on",
            "grants-TOTAL_FORMS": str(len(resources)),
            "grants-INITIAL_FORMS": "0",
            "grants-MIN_NUM_FORMS": "0",
            "grants-MAX_NUM_FORMS": "1000",
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        }
        for i, resource in enumerate(resources):
            data[f"grants-{i}-resource"] = resource
        response = session.post(
            f"{worker.url}/admin/drf_m2m_auth/client/add/", data=data, timeout=10, allow_redirects=False
        )
        since = time.monotonic()
        assert response.status_code == 302, response.text[:2000]
        if "orders" in resources:  # every worker knows the new client before the test goes on
            return self.wait_everywhere("/orders/", self.token(client_id), 200, since)
        return {}

    def admin_action(self, worker: Worker, action: str, client_id: str) -> float:
        """Run a changelist action on one client through ``worker``; monotonic time of its answer."""
        session = self.admin_session(worker)
        changelist = f"{worker.url}/admin/drf_m2m_auth/client/"
        page = session.get(changelist, params={"q": client_id}, timeout=10).text
        pks = re.findall(r'name="_selected_action" value="(\d+)"', page)
        assert len(pks) == 1, f"expected one client {client_id!r} in the changelist, found {pks}"
        response = session.post(
            changelist,
            data={
                "action": action,
                "_selected_action": pks,
                "index": "0",
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            timeout=10,
            allow_redirects=False,
        )
        answered = time.monotonic()  # the transaction has committed before the 302 is sent
        assert response.status_code == 302, response.text[:1000]
        return answered


def _start_deployment(name: str, extra_env: dict, issuer, workdir: Path) -> Deployment:
    env = django_env(
        {
            **extra_env,
            "M2M_ISSUER": issuer.fake.issuer,
            "M2M_AUDIENCE": issuer.fake.audience,
            "M2M_JWKS_URL": issuer.jwks_url,
            "M2M_REVOCATION_CHECK_INTERVAL": str(INTERVAL),
        }
    )
    # One process for both steps: a Django start-up costs seconds on a busy CI machine.
    setup = manage(
        env,
        "shell",
        "-c",
        "; ".join(
            [
                "from django.core.management import call_command",
                "call_command('migrate', verbosity=0)",
                "from django.contrib.auth import get_user_model",
                "get_user_model().objects.create_superuser('admin', 'admin@example.com', 'admin-pw')",
            ]
        ),
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    workers = [Worker(f"{name}-w{i}", env, workdir).start() for i in range(WORKERS)]
    try:
        for worker in workers:
            worker.wait_ready()
    except BaseException:
        for worker in workers:
            worker.stop()
        raise
    return Deployment(name, env, workers, issuer, workdir)


@pytest.fixture(scope="session")
def redis_deployment(postgres, redis_server, issuer, tmp_path_factory):
    """PostgreSQL + Redis: what production looks like."""
    db = postgres.create_database("m2m_fleet")
    workdir = tmp_path_factory.mktemp("fleet-redis")
    deployment = _start_deployment(
        "redis", {**postgres.env(db), "TESTPROJECT_REDIS_URL": redis_server.url}, issuer, workdir
    )
    deployment.redis = redis_server
    yield deployment
    for worker in deployment.workers:
        worker.stop()


@pytest.fixture(scope="session")
def sqlite_deployment(issuer, tmp_path_factory):
    """SQLite + a file-based cache: the embedded default, no server at all."""
    workdir = tmp_path_factory.mktemp("fleet-sqlite")
    deployment = _start_deployment(
        "sqlite",
        {"TESTPROJECT_SQLITE": str(workdir / "db.sqlite3"), "TESTPROJECT_CACHE_DIR": str(workdir / "cache")},
        issuer,
        workdir,
    )
    yield deployment
    for worker in deployment.workers:
        worker.stop()


@pytest.fixture(params=["redis", "sqlite"])
def deployment(request):
    return request.getfixturevalue(f"{request.param}_deployment")
