"""A fleet on real engines: one PostgreSQL, one Redis, a control plane and three API services.

The control plane (``testproject.controlplane``: admin + the app, read-write) and three API
services (``testproject.fleet.orders``/``billing``/``shipping``), each as two gunicorn workers
addressed one by one. The services read drf_m2m_auth's tables through the ``fleet`` alias
(``M2MRouter`` + ``DATABASE = "fleet"``) as a PostgreSQL role that has SELECT on those tables and
nothing else; Django's own tables live in each process's SQLite file. This module starts its own
PostgreSQL and Redis, because it stops and restarts both.

Measured times are printed (``-s`` shows them) and asserted against the fleet's bounds:
REVOCATION_CHECK_INTERVAL = 0.5 s, every worker of every service within 1 s.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from .servers import PostgresServer, RedisServer, Worker, django_env, manage, postgres_bindir, require, wait_for

pytestmark = pytest.mark.slow

APIS = ("orders", "billing", "shipping")
WORKERS_PER_SERVICE = 2
CHECK_INTERVAL = 0.5
DB_CHECK_INTERVAL = 2.0
BOUND = 1.0  # every worker of every service answers accordingly within 1 s
READER = "m2m_reader"
DBNAME = "m2m_fleet"
SCOPE = "fleet:call"


def audience(api: str) -> str:
    return f"https://{api}.fleet.example"


class Fleet:
    def __init__(self, pg: PostgresServer, redis: RedisServer, issuer, workdir: Path):
        self.pg, self.redis, self.issuer, self.workdir = pg, redis, issuer, workdir
        self.control: Worker | None = None
        self.services: dict[str, list[Worker]] = {}
        self.times: dict[str, float] = {}  # what the report quotes

    def env(self, settings: str, name: str, *, user: str) -> dict[str, str]:
        return django_env(
            {
                "DJANGO_SETTINGS_MODULE": settings,
                "TESTPROJECT_SQLITE": str(self.workdir / f"{name}.sqlite3"),
                "TESTPROJECT_FLEET_PG_HOST": self.pg.host,
                "TESTPROJECT_FLEET_PG_USER": user,
                "TESTPROJECT_FLEET_PG_NAME": DBNAME,
                "TESTPROJECT_REDIS_URL": self.redis.url,
                "M2M_ISSUER": self.issuer.fake.issuer,
                "M2M_JWKS_URL": self.issuer.jwks_url,
                "M2M_REVOCATION_CHECK_INTERVAL": str(CHECK_INTERVAL),
                "M2M_REVOCATION_DB_CHECK_INTERVAL": str(DB_CHECK_INTERVAL),
            }
        )

    @property
    def control_env(self) -> dict[str, str]:
        return self.env("testproject.controlplane", "control", user=self.pg.superuser)

    def service_worker(self, api: str, name: str) -> Worker:
        return Worker(name, self.env(f"testproject.fleet.{api}", name, user=READER), self.workdir)

    @property
    def workers(self) -> list[tuple[str, Worker]]:
        return [(api, w) for api in APIS for w in self.services[api]]

    def cp(self, *args: str, check: bool = True):
        result = manage(self.control_env, *args)
        if check:
            assert result.returncode == 0, f"manage.py {' '.join(args)}: {result.stdout}\n{result.stderr}"
        return result

    def token(self, client_id: str, api: str, **claims) -> str:
        return self.issuer.fake.token(sub=f"{client_id}@clients", scopes=[SCOPE], aud=audience(api), **claims)

    def tokens(self, client_id: str, **claims) -> dict[str, str]:
        return {api: self.token(client_id, api, **claims) for api in APIS}

    def wait_all(
        self,
        path: str,
        client_id: str,
        expected: dict[str, int],
        since: float,
        timeout: float = 15.0,
        tokens: dict[str, str] | None = None,
    ) -> dict[str, float]:
        """Poll every worker until it answers ``expected[api]``; seconds per worker since ``since``."""
        import requests

        tokens = tokens or self.tokens(client_id)
        seen: dict[str, float] = {}
        deadline = since + timeout
        with requests.Session() as session:
            while len(seen) < len(self.workers) and time.monotonic() < deadline:
                for api, worker in self.workers:
                    if worker.name in seen:
                        continue
                    response = session.get(
                        worker.url + path, headers={"Authorization": f"Bearer {tokens[api]}"}, timeout=10
                    )
                    assert response.status_code < 500, f"{worker.name}: {response.status_code} {response.text[:200]}"
                    if response.status_code == expected[api]:
                        seen[worker.name] = round(time.monotonic() - since, 3)
                time.sleep(0.01)
        missing = [w.name for _, w in self.workers if w.name not in seen]
        assert not missing, f"{missing} never answered {expected} within {timeout}s"
        return seen

    def record(self, what: str, times: dict[str, float]) -> float:
        slowest = max(times.values())
        self.times[what] = slowest
        print(f"\nfleet: {what}: slowest worker {slowest:.3f} s ({times})")
        return slowest


def grant_reader(pg: PostgresServer) -> None:
    """The data-plane role: SELECT on drf_m2m_auth's tables, nothing else (docs/guide/fleet.rst)."""
    with pg.connect(DBNAME) as conn:
        conn.execute(f"CREATE ROLE {READER} LOGIN")
        conn.execute(f"GRANT CONNECT ON DATABASE {DBNAME} TO {READER}")
        conn.execute(f"GRANT USAGE ON SCHEMA public TO {READER}")
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'drf\\_m2m\\_auth\\_%'"
            )
        ]
        assert tables
        for table in tables:
            conn.execute(f'GRANT SELECT ON "{table}" TO {READER}')


@pytest.fixture(scope="module")
def fleet(issuer, tmp_path_factory):
    require("PostgreSQL (postgres binary)", postgres_bindir())
    require("redis-server", shutil.which("redis-server"))
    pg = PostgresServer().start()
    redis = RedisServer().start()
    started: list[Worker] = []
    try:
        pg.create_database(DBNAME)
        fleet = Fleet(pg, redis, issuer, tmp_path_factory.mktemp("fleet"))
        fleet.cp(
            "shell",
            "-c",
            "; ".join(
                [
                    "from django.core.management import call_command",
                    "call_command('migrate', verbosity=0)",
                    "call_command('migrate', database='fleet', verbosity=0)",
                    "from django.contrib.auth import get_user_model",
                    "get_user_model().objects.create_superuser('admin', 'admin@example.com', 'admin-pw')",
                ]
            ),
        )
        grant_reader(pg)
        fleet.control = Worker("control", fleet.control_env, fleet.workdir).start()
        started.append(fleet.control)
        for api in APIS:
            fleet.services[api] = [fleet.service_worker(api, f"{api}-w{i}").start() for i in range(WORKERS_PER_SERVICE)]
            started.extend(fleet.services[api])
        for worker in started:
            worker.wait_ready()
        # Warm every worker up (imports, first JWKS fetch, first load) so that times are propagation.
        fleet.wait_all("/whoami/", "warm-up", dict.fromkeys(APIS, 200), time.monotonic(), timeout=60)
        yield fleet
        print(f"\nfleet: measured slowest-worker times (s): {json.dumps(fleet.times)}")
    finally:
        for worker in started:
            worker.stop()
        redis.stop()
        pg.stop()


def test_the_data_plane_role_can_only_read(fleet):
    import psycopg

    with psycopg.connect(host=fleet.pg.host, user=READER, dbname=DBNAME, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM drf_m2m_auth_client").fetchone() is not None
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE drf_m2m_auth_revocationstate SET clients_stamp = 0")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM django_migrations")


@pytest.fixture(scope="module")
def admin_page(fleet):
    from .test_admin_browser import CHROMIUM, CHROMIUM_ARGS

    require("chromium", shutil.which("chromium") or shutil.which(CHROMIUM))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000
        )
        context = browser.new_context(base_url=fleet.control.url)
        context.set_default_timeout(20_000)
        page = context.new_page()
        page.goto("/admin/login/?next=/admin/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", "admin-pw")
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/")
        yield page
        context.close()
        browser.close()


def test_grant_and_revoke_in_the_control_plane_admin(fleet, admin_page):
    page, client_id = admin_page, "svc-a"
    page.goto("/admin/drf_m2m_auth/client/add/")
    page.fill("#id_client_id", client_id)
    page.fill("#id_name", "Service A")
    page.fill("#id_grants-0-api", "orders")  # the grant is for API "orders"
    page.fill("#id_grants-0-resource", "orders")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist li.success")
    since = time.monotonic()  # the save has committed before the success page
    times = fleet.wait_all("/api/", client_id, {"orders": 200, "billing": 403, "shipping": 403}, since)
    assert fleet.record("admin grant (orders 200, others 403)", times) <= BOUND, times

    page.goto(f"/admin/drf_m2m_auth/client/?q={client_id}")
    page.check(f"tr:has-text('{client_id}') input.action-select")
    page.select_option("select[name=action]", label="Deactivate (reject all their tokens)")
    page.click("button[name=index]")
    page.wait_for_selector("ul.messagelist li.success")
    since = time.monotonic()
    times = fleet.wait_all("/whoami/", client_id, dict.fromkeys(APIS, 401), since)
    assert fleet.record("admin deactivate (401 everywhere)", times) <= BOUND, times


def test_m2m_revoke_at_the_control_plane_reaches_every_worker(fleet):
    client_id = "svc-b"
    fleet.cp(
        "shell",
        "-c",
        f"from drf_m2m_auth.models import Client; Client.objects.create(client_id='{client_id}', name='B')",
    )
    old = fleet.tokens(client_id)
    fleet.wait_all("/whoami/", client_id, dict.fromkeys(APIS, 200), time.monotonic(), tokens=old)
    fleet.cp("m2m_revoke", "--client", client_id)
    since = time.monotonic()
    times = fleet.wait_all("/whoami/", client_id, dict.fromkeys(APIS, 401), since, tokens=old)
    assert fleet.record("m2m_revoke --client (401 everywhere)", times) <= BOUND, times
    # A token issued after the revocation still passes everywhere.
    fresh = fleet.tokens(client_id, iat=int(time.time()) + 2)
    assert fleet.wait_all("/whoami/", client_id, dict.fromkeys(APIS, 200), time.monotonic(), tokens=fresh)


def status_urls(fleet: Fleet) -> list[str]:
    return [f"{w.url}/m2m/status" for _, w in fleet.workers]


def test_m2m_drill_measures_every_worker(fleet):
    result = fleet.cp("m2m_drill", *[a for url in status_urls(fleet) for a in ("--service", url)], "--bound", "5")
    print("\n" + result.stdout)
    assert "every service saw the change within" in result.stdout
    result = fleet.cp("m2m_drill", "--json", *[a for url in status_urls(fleet) for a in ("--service", url)])
    report = json.loads(result.stdout)
    assert report["ok"] and len(report["services"]) == len(APIS) * WORKERS_PER_SERVICE
    times = {url: r["seconds"] for url, r in report["services"].items()}
    assert fleet.record("m2m_drill (status version >= V)", times) <= BOUND, times
    # The canary is gone again: nothing left in the shared database.
    left = fleet.cp(
        "shell",
        "-c",
        "from drf_m2m_auth.models import Client, DeletedClient; "
        "print(Client.objects.filter(client_id__contains='canary').count(), "
        "DeletedClient.objects.filter(client_id__contains='canary').count())",
    )
    assert left.stdout.splitlines()[-1].split() == ["0", "0"], left.stdout
    # A service that never catches up (nothing listening) fails the drill past the bound.
    dead = Worker("dead", {}, fleet.workdir)  # only its free port is used
    late = fleet.cp("m2m_drill", "--service", f"{dead.url}/m2m/status", "--bound", "1", check=False)
    assert late.returncode == 1 and "NOT within 1 s (unreachable" in late.stdout, late.stdout + late.stderr


def test_redis_down_then_back(fleet):
    client_id = "svc-c"
    fleet.cp("shell", "-c", f"from drf_m2m_auth.models import Client; Client.objects.create(client_id='{client_id}')")
    fleet.wait_all("/whoami/", client_id, dict.fromkeys(APIS, 200), time.monotonic())
    fleet.redis.stop(cleanup=False)
    try:
        fleet.cp("m2m_revoke", "--deactivate", client_id)
        since = time.monotonic()
        times = fleet.wait_all("/whoami/", client_id, dict.fromkeys(APIS, 401), since)
        assert fleet.record("Redis down: deactivate", times) <= DB_CHECK_INTERVAL, times
    finally:
        fleet.redis.start()
    time.sleep(2 * CHECK_INTERVAL + 0.5)  # every worker has read the cache again
    fleet.cp("m2m_revoke", "--activate", client_id)
    since = time.monotonic()
    times = fleet.wait_all("/whoami/", client_id, dict.fromkeys(APIS, 200), since)
    assert fleet.record("Redis back: activate", times) <= BOUND, times


def test_postgres_restart_under_load_and_a_cold_start_while_it_is_down(fleet):
    import requests

    client_id = "svc-d"
    fleet.cp(
        "shell",
        "-c",
        "from drf_m2m_auth.models import Client, ResourceGrant; "
        f"c = Client.objects.create(client_id='{client_id}'); "
        "[ResourceGrant.objects.create(client=c, api=r, resource=r) for r in ('orders', 'billing', 'shipping')]",
    )
    fleet.wait_all("/api/", client_id, dict.fromkeys(APIS, 200), time.monotonic())
    tokens = {api: fleet.token(client_id, api) for api in APIS}
    answers: list[tuple[str, int]] = []
    stop = threading.Event()

    def load(api: str, worker: Worker) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                code = session.get(
                    worker.url + "/api/", headers={"Authorization": f"Bearer {tokens[api]}"}, timeout=10
                ).status_code
                answers.append((worker.name, code))
                time.sleep(0.02)

    threads = [threading.Thread(target=load, args=pair, daemon=True) for pair in fleet.workers]
    for thread in threads:
        thread.start()
    cold: Worker | None = None
    try:
        time.sleep(0.5)
        fleet.pg.halt()
        # A worker started now has nothing to serve from: 503 + Retry-After, never a guess.
        cold = fleet.service_worker("orders", "orders-cold").start()
        cold.wait_ready()
        response = requests.get(cold.url + "/api/", headers={"Authorization": f"Bearer {tokens['orders']}"}, timeout=10)
        assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1, response.text
        time.sleep(DB_CHECK_INTERVAL + CHECK_INTERVAL)  # every running worker has tried the database
        fleet.pg.launch()
        relaunched = time.monotonic()
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)
    codes = {code for _, code in answers}
    assert codes == {200}, f"known client answered {sorted(codes)} during the restart ({len(answers)} requests)"
    print(f"\nfleet: {len(answers)} requests during the PostgreSQL restart, all 200")
    try:

        def recovered() -> bool:
            headers = {"Authorization": f"Bearer {tokens['orders']}"}
            return requests.get(cold.url + "/api/", headers=headers, timeout=10).status_code == 200

        wait_for(recovered, 15, "the cold-started worker after PostgreSQL came back", cold.proc, cold.log)
        fleet.times["cold start: 200 after PostgreSQL is back"] = round(time.monotonic() - relaunched, 3)
    finally:
        cold.stop()


def test_a_grant_for_one_api_gives_nothing_at_another(fleet):
    """Every API has a "reports" resource: a grant names the API it is for, and each service loads
    only its own API's grants."""
    client_id = "svc-e"
    fleet.cp("m2m_grant", client_id, "reports", "--api", "orders", "--create")
    since = time.monotonic()
    times = fleet.wait_all("/reports/", client_id, {"orders": 200, "billing": 403, "shipping": 403}, since)
    assert fleet.record("grant for API orders (reports: 200 at orders only)", times) <= BOUND, times
    # The same resource granted at billing is a second grant; taking orders' away leaves billing's.
    fleet.cp("m2m_grant", client_id, "reports", "--api", "billing")
    fleet.cp("m2m_grant", client_id, "reports", "--api", "orders", "--remove")
    since = time.monotonic()
    times = fleet.wait_all("/reports/", client_id, {"orders": 403, "billing": 200, "shipping": 403}, since)
    assert fleet.record("grant moved from orders to billing", times) <= BOUND, times
    listing = fleet.cp("m2m_grant", client_id, "--list").stdout
    assert listing.splitlines()[1:] == ["  billing: reports"], listing
