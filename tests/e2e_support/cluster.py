"""An issuer and a service-b, each its own process on 127.0.0.1, and service-a runs as a third."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from testproject.api import scenario as sc
from testproject.api.processes import Service, start_all

ROOT = Path(__file__).resolve().parents[2]
SERVICE_A_SCRIPT = Path(__file__).resolve().parent / "service_a.py"
SECRET = "e2e-secret-not-for-anything-else"

# Beyond the demo's cast: a writer, a client the issuer knows but service-b never registered,
# and clients used up by the revocation tests.
EXTRA_CLIENTS = {
    "writer": ([sc.READ, sc.WRITE], True),
    "stranger": ([sc.READ], False),
    "revoked-later": ([sc.READ], True),
    "deactivated-later": ([sc.READ], True),
}


def seed() -> dict:
    spec = sc.seed(SECRET)
    for client_id, (scopes, registered) in EXTRA_CLIENTS.items():
        spec["issuer"]["clients"].append(
            {"client_id": client_id, "name": client_id, "secret": SECRET, "grants": {sc.SERVICE_B_AUDIENCE: scopes}}
        )
        if registered:
            spec["service_b"]["clients"].append({"client_id": client_id, "name": client_id, "resources": [sc.RESOURCE]})
    return spec


# The second tenant's client: service-b trusts that issuer but never registered this client.
PARTNER = "partner-job"


def seed_tenant_2() -> dict:
    """The second issuer's records: service-b's API and one client of its own."""
    apis = [api for api in sc.seed(SECRET)["issuer"]["apis"] if api["identifier"] == sc.SERVICE_B_AUDIENCE]
    client = {"client_id": PARTNER, "name": PARTNER, "secret": SECRET, "grants": {sc.SERVICE_B_AUDIENCE: [sc.READ]}}
    return {"issuer": {"apis": apis, "clients": [client]}}


class Cluster:
    def __init__(self, workdir: Path, *, service_b_env: dict[str, str] | None = None):
        self.issuer = Service("issuer", workdir, name="issuer")
        self.issuer_url = f"http://127.0.0.1:{self.issuer.port}/issuer/"
        common = {"M2M_ISSUER": self.issuer_url, "M2M_AUDIENCE": sc.SERVICE_B_AUDIENCE}
        self.issuer.extra_env.update(common)
        # A second tenant: another issuer process, its own database and signing keys, its own URL.
        self.issuer_2 = Service("issuer", workdir, name="issuer-2")
        self.issuer_2_url = f"http://127.0.0.1:{self.issuer_2.port}/issuer/"
        self.issuer_2.extra_env.update({"M2M_ISSUER": self.issuer_2_url, "M2M_AUDIENCE": sc.SERVICE_B_AUDIENCE})
        self.service_b = Service(
            "api", workdir, name="service-b", env={**common, "M2M_ISSUER_2": self.issuer_2_url, **(service_b_env or {})}
        )
        self.token_url = self.issuer_url + "oauth/token"
        self.token_2_url = self.issuer_2_url + "oauth/token"
        self.data_url = self.service_b.url + "data/"
        self.seed_path = Path(workdir) / "seed.json"
        self.seed_path.write_text(json.dumps(seed()))
        self.seed_2_path = Path(workdir) / "seed-2.json"
        self.seed_2_path.write_text(json.dumps(seed_tenant_2()))

    def __enter__(self) -> Cluster:
        self.issuer_2.start(seed=self.seed_2_path)
        try:
            start_all([self.issuer, self.service_b], seed=self.seed_path, timeout=60)
            self.issuer_2.wait_ready(60)
        except BaseException:
            self.issuer_2.stop()
            raise
        # Operators' shells (manage.py operator_console), one per service, started once.
        self.issuer_ops, self.service_b_ops = self.issuer.console(), self.service_b.console()
        return self

    def __exit__(self, *exc) -> None:
        for console in (self.issuer_ops, self.service_b_ops):
            console.close()
        for service in (self.service_b, self.issuer, self.issuer_2):
            service.stop()

    def service_a(self, *jobs: dict) -> list[dict]:
        """Run service-a in its own process for these calls; return what it saw, call by call.

        A job: ``client_id`` (service-a), ``audience`` (service-b), ``method`` (GET), ``scope``,
        ``secret`` (the right one).
        """
        defaults = {
            "client_id": sc.SERVICE_A,
            "audience": sc.SERVICE_B_AUDIENCE,
            "method": "GET",
            "scope": "",
            "secret": SECRET,
        }
        jobs = [{**defaults, **job} for job in jobs or [{}]]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        # The secret travels in argv here only because it is a throwaway test secret.
        done = subprocess.run(
            [sys.executable, str(SERVICE_A_SCRIPT), self.token_url, self.data_url, json.dumps(jobs)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        seen = json.loads(done.stdout)
        assert seen["django_imported"] is False  # the calling side runs without Django
        return seen["results"]

    def until(self, predicate, timeout: float = 5.0, interval: float = 0.2):
        """Call ``predicate`` until it returns something other than None/False, or ``timeout`` passes.

        Returns the last value (a ``requests.Response`` counts as an answer even when it is a 4xx).
        """
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if (value is not None and value is not False) or time.monotonic() > deadline:
                return value
            time.sleep(interval)
