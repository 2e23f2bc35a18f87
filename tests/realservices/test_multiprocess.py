"""Fleet-scale revocation across real worker processes over HTTP, with PostgreSQL + Redis and with
SQLite + a file cache: a revocation made through one worker, or by a management command, is a 401
at every worker within the propagation bound, with no restart.
"""

from __future__ import annotations

import time

import pytest

from .conftest import INTERVAL

pytestmark = pytest.mark.slow

# A process checks the generation at most once per INTERVAL; the rest is one cache read, a few
# small queries, and the polling loop itself on a shared, busy 2-core machine.
BOUND = INTERVAL + 1.0


def report(what: str, deployment, times: dict[str, float]) -> None:
    worst = max(times.values())
    print(
        f"\npropagation [{deployment.name}] {what}: "
        + ", ".join(f"{k}={v * 1000:.0f}ms" for k, v in sorted(times.items()))
        + f" (max {worst * 1000:.0f}ms)"
    )
    assert worst <= BOUND, f"{what}: slowest worker took {worst:.2f}s > {BOUND}s"


def test_grants_decide_where_a_client_may_go(deployment):
    times = deployment.register("client_id_of_service_a", "orders", "invoices")
    report("a new client and its grants", deployment, times)
    token = deployment.token("client_id_of_service_a")
    every = len(deployment.workers)
    assert deployment.statuses("/orders/", token) == [200] * every
    assert deployment.statuses("/payroll/", token) == [403] * every
    # Unregistered: authenticated (UNREGISTERED_CLIENTS = "allow") but HasResourceGrant says no.
    stranger = deployment.token("unregistered_client")
    assert deployment.statuses("/whoami/", stranger) == [200] * every
    assert deployment.statuses("/orders/", stranger) == [403] * every


def test_admin_revocation_through_one_worker_reaches_every_worker(deployment):
    client = f"svc-admin-{deployment.name}"
    deployment.register(client, "orders")
    w = deployment.workers
    old = deployment.token(client)
    assert deployment.statuses("/orders/", old) == [200] * len(w)  # verified and cached everywhere

    # "Revoke all tokens now" through worker 0: 401 there at once, everywhere within the bound.
    since = deployment.admin_action(w[0], "revoke_tokens_now", client)
    assert deployment.status(w[0], "/orders/", old) == 401
    times = deployment.wait_everywhere("/orders/", old, 401, since)
    report("admin 'revoke all tokens now' via w0", deployment, {k: v for k, v in times.items() if k != w[0].name})

    fresh = deployment.fresh_token(client)
    assert deployment.statuses("/orders/", fresh) == [200] * len(w)
    # Deactivate through worker 1, activate through worker 2: the same, in both directions.
    since = deployment.admin_action(w[1], "deactivate", client)
    assert deployment.status(w[1], "/orders/", fresh) == 401
    times = deployment.wait_everywhere("/orders/", fresh, 401, since)
    report("admin 'deactivate' via w1", deployment, {k: v for k, v in times.items() if k != w[1].name})
    since = deployment.admin_action(w[2], "activate", client)
    assert deployment.status(w[2], "/orders/", fresh) == 200
    times = deployment.wait_everywhere("/orders/", fresh, 200, since)
    report("admin 'activate' via w2", deployment, {k: v for k, v in times.items() if k != w[2].name})


def test_commands_reach_every_worker(deployment):
    """Operator commands run in their own process: they reach the workers only via the cache."""
    a, b = f"svc-jti-{deployment.name}", f"svc-deact-{deployment.name}"
    deployment.register(a, "orders")
    deployment.register(b, "orders")
    jti = f"leaked-{deployment.name}"
    leaked, other, token_b = deployment.token(a, jti=jti), deployment.token(a), deployment.token(b)
    for token in (leaked, other, token_b):
        assert deployment.statuses("/orders/", token) == [200] * len(deployment.workers)

    result = deployment.manage("m2m_revoke", "--jti", jti, "--exp", str(int(time.time()) + 3600), "--deactivate", b)
    since = time.monotonic()  # measured from the command's exit: its commit came a little earlier
    assert "rejected until" in result.stdout and "now inactive" in result.stdout
    assert "Every process sharing the cache" in result.stdout  # Redis or a file cache: announced
    report("m2m_revoke --jti (from exit)", deployment, deployment.wait_everywhere("/orders/", leaked, 401, since))
    deployment.wait_everywhere("/orders/", token_b, 401, since, timeout=BOUND)
    assert deployment.statuses("/orders/", other) == [200] * len(deployment.workers)

    deployment.manage("m2m_grant", a, "payroll")
    since = time.monotonic()
    report("m2m_grant (from exit)", deployment, deployment.wait_everywhere("/payroll/", other, 200, since))


def test_bad_command_input_is_a_clear_error(redis_deployment):
    result = redis_deployment.manage("m2m_revoke", "--client", "no-such-client", "--jti", "x y", check=False)
    assert result.returncode == 1 and "--jti needs --exp" in result.stderr
    result = redis_deployment.manage("m2m_grant", "svc\nforged", "orders", "--create", check=False)
    assert result.returncode == 1 and "control or format characters (U+000A)" in result.stderr
    result = redis_deployment.manage("m2m_grant", "no-such-client", "orders", check=False)
    assert result.returncode == 1 and "unknown client id 'no-such-client'" in result.stderr


def test_revocation_while_redis_is_down_is_not_lost(redis_deployment):
    fleet = redis_deployment
    client = "svc-outage"
    fleet.register(client, "orders")
    token = fleet.token(client)
    assert fleet.statuses("/orders/", token) == [200] * len(fleet.workers)

    fleet.redis.stop(cleanup=False)
    try:
        # Requests keep working while the cache is down (no 500s), answered from memory.
        assert fleet.statuses("/orders/", token) == [200] * len(fleet.workers)
        result = fleet.manage("m2m_revoke", "--deactivate", client)
        since = time.monotonic()
        assert "cache is unreachable" in result.stderr
        # The workers cannot read the generation either, so they compare the database stamps.
        report("deactivate while Redis is down", fleet, fleet.wait_everywhere("/orders/", token, 401, since))
    finally:
        fleet.redis.start()
    # Redis is back, empty: still revoked, and changes flow through the cache again.
    time.sleep(INTERVAL * 1.2)
    assert fleet.statuses("/orders/", token) == [401] * len(fleet.workers)
    since = fleet.admin_action(fleet.workers[0], "activate", client)
    times = fleet.wait_everywhere("/orders/", token, 200, since)
    report(
        "activate via w0 after Redis came back", fleet, {k: v for k, v in times.items() if k != fleet.workers[0].name}
    )
