"""The upgrade to grants per API and the change sequence (migration 0005, issue 14), on a real SQLite
file; tests/realservices/test_migration_pg.py plays the same scenarios on PostgreSQL.

A database at the previous schema (0004_client_issuer_required) holds clients, grants and a
revocation state whose stamps count 8 changes. Migrating forward fills every grant's ``api`` with
this project's API (its single audience, or DRF_M2M_AUTH['API'] when set), starts the sequence at
the stamps' count (so the version the status view reports never goes backwards) and keeps every
grant working; with several audiences, no API and existing grants it refuses, naming
DRF_M2M_AUTH['API'], and finishes once the API is set; with no grant to fill it needs no API.
Every step is a real ``manage.py`` process (tests/upgrade_settings.py reads the database and the
DRF_M2M_AUTH keys from the environment).
"""

from __future__ import annotations

import json
import os

import pytest

from drf_m2m_auth.querysets import STAMP_STEP

from .upgrade_scenario import REPO, manage, ok

pytestmark = pytest.mark.slow

ISSUER = "https://tenant-a.example/"
ORDERS, BILLING = "https://orders.example", "https://billing.example"
CLIENT_CHANGES, TOKEN_CHANGES = 3, 5  # what the seeded stamps count

# The previous schema, then rows written with its models (the migration state's apps).
AT_0004 = f"""
from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("migrate", "drf_m2m_auth", "0004_client_issuer_required", verbosity=0)
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
apps = MigrationExecutor(connection).loader.project_state(("drf_m2m_auth", "0004_client_issuer_required")).apps
Client = apps.get_model("drf_m2m_auth", "Client")
Grant = apps.get_model("drf_m2m_auth", "ResourceGrant")
State = apps.get_model("drf_m2m_auth", "RevocationState")
a = Client.objects.create(issuer={ISSUER!r}, client_id="svc-a", name="A", revision=1)
Client.objects.create(issuer={ISSUER!r}, client_id="svc-b", name="B", revision=2)
for resource in GRANTS:
    Grant.objects.create(client=a, resource=resource)
State.objects.update_or_create(pk=1, defaults=dict(
    clients_stamp={CLIENT_CHANGES * STAMP_STEP + 12345}, tokens_stamp={TOKEN_CHANGES * STAMP_STEP + STAMP_STEP - 1}))
print("seeded", Grant.objects.count())
"""

# After the upgrade: the grants, the sequence, what the request path grants, and the next change.
PROBE = f"""
import json
from django.db import IntegrityError, transaction
from drf_m2m_auth import revocation
from drf_m2m_auth.models import Client, ResourceGrant, RevocationChange, RevocationState
out = {{"grants": sorted(ResourceGrant.objects.values_list("client__client_id", "api", "resource"))}}
state = RevocationState.objects.get(pk=1)
out["sequence"], out["pruned_through"] = state.sequence, state.pruned_through
out["resources"] = sorted(revocation.resources_for({ISSUER!r}, "svc-a") or [])
if out["grants"]:
    first = ResourceGrant.objects.order_by("pk").first()
    try:
        with transaction.atomic():
            ResourceGrant.objects.create(client=first.client, api=first.api, resource=first.resource)
        out["duplicate"] = "accepted"
    except IntegrityError:
        out["duplicate"] = "refused"
Client.objects.get(client_id="svc-b").deactivate()
out["next"] = RevocationState.objects.get(pk=1).sequence
out["changes"] = list(RevocationChange.objects.values_list("sequence", "kind", "key"))
print("PROBE" + json.dumps(out))
"""


def auth_env(env: dict[str, str], **auth) -> dict[str, str]:
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "tests.upgrade_settings",
        "M2M_TEST_AUTH": json.dumps({"ISSUER": ISSUER, **auth}),
    }


def shown(env: dict[str, str]) -> str:
    return ok(manage(env, "showmigrations", "drf_m2m_auth", "--skip-checks"))  # E032 would stop it


def at_0004(env: dict[str, str], grants: list[str]) -> None:
    out = ok(manage(env, "shell", "-c", f"GRANTS = {grants!r}\n" + AT_0004))
    assert f"seeded {len(grants)}" in out, out
    assert "[ ] 0005_grant_api_change_sequence" in shown(env)


def probe(env: dict[str, str]) -> dict:
    out = ok(manage(env, "shell", "-c", PROBE))
    line = next(text for text in out.splitlines() if text.startswith("PROBE"))
    return json.loads(line[len("PROBE") :])


def upgraded(found: dict, api: str) -> None:
    assert found["grants"] == [["svc-a", api, "invoices"], ["svc-a", api, "orders"]], found
    # The sequence starts at the stamps' count of changes: the version never goes backwards.
    start = CLIENT_CHANGES + TOKEN_CHANGES
    assert found["sequence"] == found["pruned_through"] == start, found
    assert found["next"] == start + 1 and found["changes"] == [[start + 1, "client", "svc-b"]], found
    assert found["resources"] == ["invoices", "orders"], found  # every existing grant still works
    assert found["duplicate"] == "refused", found  # unique (client, api, resource)


def fills_api_from_the_audience(env: dict[str, str]) -> None:
    env = auth_env(env, AUDIENCE=ORDERS)
    at_0004(env, ["orders", "invoices"])
    ok(manage(env, "migrate", "-v0"))
    upgraded(probe(env), ORDERS)


def fills_api_from_the_setting(env: dict[str, str]) -> None:
    env = auth_env(env, AUDIENCE=[ORDERS, BILLING], API="orders")
    at_0004(env, ["orders", "invoices"])
    ok(manage(env, "migrate", "-v0"))
    upgraded(probe(env), "orders")


def refuses_without_an_api_then_finishes(env: dict[str, str]) -> None:
    unset = auth_env(env, AUDIENCE=[ORDERS, BILLING])
    at_0004(unset, ["orders", "invoices"])
    checked = manage(unset, "migrate", "-v0")  # the system check stops it first
    assert checked.returncode != 0, checked.stdout
    assert "drf_m2m_auth.E032" in checked.stderr and "DRF_M2M_AUTH['API'] is required" in checked.stderr
    refused = manage(unset, "migrate", "-v0", "--skip-checks")  # and the migration itself refuses
    assert refused.returncode != 0, refused.stdout
    assert "RuntimeError: 2 existing grant(s) need the API they belong to" in refused.stderr, refused.stderr
    assert "Set DRF_M2M_AUTH['API'] to the identifier of the API these grants are for" in refused.stderr
    assert "[ ] 0005_grant_api_change_sequence" in shown(unset)
    fixed = auth_env(env, AUDIENCE=[ORDERS, BILLING], API="orders")
    ok(manage(fixed, "migrate", "-v0"))
    upgraded(probe(fixed), "orders")


def migrates_no_grants_without_an_api(env: dict[str, str]) -> None:
    env = auth_env(env, AUDIENCE=[ORDERS, BILLING])
    at_0004(env, [])
    ok(manage(env, "migrate", "-v0", "--skip-checks"))  # the check still says E032; nothing needs the API
    assert "[X] 0005_grant_api_change_sequence" in shown(env)
    found = probe(env)
    assert found["grants"] == [] and found["sequence"] == CLIENT_CHANGES + TOKEN_CHANGES, found


SCENARIOS = [
    fills_api_from_the_audience,
    fills_api_from_the_setting,
    refuses_without_an_api_then_finishes,
    migrates_no_grants_without_an_api,
]


def sqlite_env(path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TESTPROJECT_", "DJANGO_", "M2M_"))}
    env.update({"TESTPROJECT_SQLITE": str(path), "PYTHONPATH": str(REPO)})
    return env


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_upgrade_to_0005_on_sqlite(tmp_path, scenario):
    scenario(sqlite_env(tmp_path / "db.sqlite3"))
