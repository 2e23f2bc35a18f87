"""A DPoP proof is accepted once across worker processes that share a cache (RFC 9449 11.1).

Two real service-b server processes share one FileBasedCache directory, as two gunicorn workers
share Redis: a proof accepted by one is a replay at the other. FileBasedCache.add() is
check-then-set, so the claim uses an atomic link() instead; a race of two processes over the
same proofs shows that each proof is accepted exactly once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from drf_m2m_auth.dpop_key import DPoPKey
from drf_m2m_auth.testing import JWKSServer

from .nginx_support.harness import REPO, ServiceB

pytestmark = pytest.mark.slow
TOKEN = "a.b.c"

RACER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import django
    from django.conf import settings
    settings.configure(CACHES={"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                                           "LOCATION": sys.argv[1]}})
    django.setup()
    from django.core.cache import caches
    from drf_m2m_auth.dpop import DPoPVerifier
    from drf_m2m_auth.shared import SharedCache
    from drf_m2m_auth.errors import InvalidToken

    work = json.loads(Path(sys.argv[2]).read_text())
    verifier = DPoPVerifier(replay_cache=SharedCache(caches["default"]))
    go = Path(sys.argv[3])
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.001)
    accepted = []
    for proof in work["proofs"]:
        try:
            verifier.verify(proof, method="GET", url=work["url"], access_token=work["token"], jkt=work["jkt"])
            accepted.append(proof)
        except InvalidToken as exc:
            assert exc.reason == "dpop_replayed", exc.reason
    print(json.dumps(accepted), flush=True)
""")


def test_two_processes_racing_over_the_same_proofs_accept_each_once(tmp_path):
    key, url = DPoPKey(), "https://api.example/data/"
    proofs = [key.proof("GET", url, access_token=TOKEN) for _ in range(150)]
    work = tmp_path / "work.json"
    work.write_text(json.dumps({"proofs": proofs, "url": url, "token": TOKEN, "jkt": key.thumbprint}))
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path / "cache"), str(work), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    try:
        for racer in racers:
            assert racer.stdout.readline().strip() == "ready", racer.stderr.read()
        go.touch()
        results = []
        for racer in racers:
            out, err = racer.communicate(timeout=60)
            assert racer.returncode == 0, err
            results.append(json.loads(out))
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()
    first, second = (set(r) for r in results)
    assert first | second == set(proofs)  # every proof accepted...
    assert not first & second  # ...by exactly one of the two processes


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("workers")
    jwks = JWKSServer()
    m2m = jwks.fake.settings(JWKS_URL=jwks.jwks_url, LEEWAY=5)
    workers = []
    try:
        for _ in range(2):  # one after the other: the second finds the database migrated
            workers.append(ServiceB(tmp, m2m))
        yield jwks.fake, workers
    finally:
        for worker in workers:
            worker.stop()
        jwks.stop()


def test_a_proof_accepted_by_one_worker_is_a_replay_at_the_other(two_workers):
    issuer, (one, two) = two_workers
    key = DPoPKey()
    token = issuer.token(cnf={"jkt": key.thumbprint})

    def send(worker, proof):
        return requests.get(
            f"http://127.0.0.1:{worker.port}/echo/",
            timeout=15,
            headers={"Authorization": f"DPoP {token}", "Host": "localhost", "DPoP": proof},
        )

    proof = key.proof("GET", "http://localhost/echo/", access_token=token)
    first = send(one, proof)
    assert first.status_code == 200, (first.headers.get("WWW-Authenticate"), one.output())
    second = send(two, proof)
    assert second.status_code == 401
    assert 'error="invalid_dpop_proof"' in second.headers["WWW-Authenticate"]
    assert "used before" in second.headers["WWW-Authenticate"]
    # a fresh proof is fine at either worker
    assert send(two, key.proof("GET", "http://localhost/echo/", access_token=token)).status_code == 200

    # The same proof sent to both at the same moment, twenty times: one 200 and one 401 each time.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(20):
            proof = key.proof("GET", "http://localhost/echo/", access_token=token)
            statuses = sorted(f.result().status_code for f in [pool.submit(send, w, proof) for w in (one, two)])
            assert statuses == [200, 401]
