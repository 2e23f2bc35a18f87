"""A status-list revocation across a fleet: four service-b processes sharing a database and a cache.

The local issuer and four real service-b server processes on 127.0.0.1 (one SQLite file and one
file-based cache between the four, as workers of one service share Redis). The issuer revokes one
token in its status list; every process must refuse it within the list's ttl, and the fleet must
fetch the list about once per ttl, not once per process.
"""

from __future__ import annotations

import base64
import json
import re
import time

import pytest
import requests

from testproject.api import scenario as sc
from testproject.api.processes import Service, start_all

pytestmark = pytest.mark.slow

WORKERS = 4
SECRET = "fleet-test-secret-not-for-anything-else"
SLACK = 2.0  # beyond the ttl: a fetch, and this test's round of polls over four processes


def list_fetches(issuer: Service) -> int:
    return len(re.findall(r'"GET /issuer/statuslists/\d+ ', issuer.log_tail(10**7)))


@pytest.fixture
def fleet(tmp_path):
    issuer = Service("issuer", tmp_path, name="issuer")
    issuer_url = f"http://127.0.0.1:{issuer.port}/issuer/"
    common = {"M2M_ISSUER": issuer_url, "M2M_AUDIENCE": sc.SERVICE_B_AUDIENCE}
    issuer.extra_env.update(common)
    # One directory, so one database and one cache; each process its own port.
    workers = [Service("api", tmp_path, name="service-b", env=common) for _ in range(WORKERS)]
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(sc.seed(SECRET)))
    started: list[Service] = []
    try:
        start_all([issuer, workers[0]], seed=seed, timeout=60)
        started += [issuer, workers[0]]
        start_all(workers[1:], timeout=60)  # the database is migrated and seeded by now
        started += workers[1:]
        yield issuer, issuer_url, workers
    finally:
        for service in reversed(started):
            service.stop()


def test_every_process_refuses_a_token_revoked_at_the_issuer_within_the_ttl(fleet):
    issuer, issuer_url, workers = fleet
    ops = issuer.console()
    try:
        answer = requests.post(
            issuer_url + "oauth/token",
            data={"grant_type": "client_credentials", "audience": sc.SERVICE_B_AUDIENCE},
            auth=(sc.SERVICE_A, SECRET),
            timeout=10,
        )
        token = answer.json()["access_token"]
        uri = json.loads(_segment(token))["status"]["status_list"]["uri"]
        ttl = float(json.loads(_segment(requests.get(uri, timeout=10).text))["ttl"])
        headers = {"Authorization": f"Bearer {token}"}
        for worker in workers:  # every process has the list in memory and accepts the token
            assert requests.get(worker.url + "data/", headers=headers, timeout=10).status_code == 200
        fetches_before = list_fetches(issuer)

        ops.run("issuer_token_status", token, "--revoke")
        acted = time.monotonic()
        refused_after: dict[int, float] = {}
        while len(refused_after) < WORKERS and time.monotonic() - acted < ttl + SLACK:  # bounded
            for i, worker in enumerate(workers):
                if i not in refused_after:
                    response = requests.get(worker.url + "data/", headers=headers, timeout=10)
                    assert response.status_code in (200, 401), response.text
                    if response.status_code == 401:
                        assert "revoked by its issuer" in response.json()["detail"]
                        refused_after[i] = time.monotonic() - acted
            time.sleep(0.05)
        fetches = list_fetches(issuer) - fetches_before
    finally:
        ops.close()
    assert sorted(refused_after) == list(range(WORKERS)), f"still accepted by some after {ttl + SLACK} s"
    last = max(refused_after.values())
    print(
        f"issuer action -> 401 per process: {', '.join(f'{t:.2f} s' for t in refused_after.values())}; "
        f"last {last:.2f} s (ttl {ttl:g} s); the list was fetched {fetches} time(s) for the {WORKERS} processes"
    )
    assert last <= ttl + SLACK
    assert fetches <= 2  # one fetch per ttl for the fleet (the window spans at most two refreshes)
    renewed = requests.post(
        issuer_url + "oauth/token",
        data={"grant_type": "client_credentials", "audience": sc.SERVICE_B_AUDIENCE},
        auth=(sc.SERVICE_A, SECRET),
        timeout=10,
    ).json()["access_token"]
    for worker in workers:
        assert (
            requests.get(worker.url + "data/", headers={"Authorization": f"Bearer {renewed}"}, timeout=10).status_code
            == 200
        )


def _segment(jwt: str) -> bytes:
    part = jwt.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
