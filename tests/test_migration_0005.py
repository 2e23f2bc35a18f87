"""The upgrade to grants per API and the change sequence, on a real SQLite file;
tests/realservices/test_migration_pg.py plays the same scenarios on PostgreSQL.

A database at the schema before it (0003_client_issuer, clients with their issuer) holds clients,
grants and a revocation state whose stamps count 8 changes. Migrating forward (0004 adds the api
and the sequence, 0005 requires the issuer, 0006 requires every grant's api) fills every grant's
``api`` with this project's API (its single audience, or DRF_M2M_AUTH['API'] when set), starts the
sequence at the stamps' count (so the version the status view reports never goes backwards) and
keeps every grant working; with several audiences, no API and existing grants 0006 refuses, naming
DRF_M2M_AUTH['API'] (the grants stay for no API meanwhile), and finishes once the API is set; with
no grant to fill no API is needed.
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
PREVIOUS = "0003_client_issuer"  # the schema before grants per API (0004) and before 0005, 0006
API_MIGRATION, REFUSING = "0004_grant_api_change_sequence", "0006_grant_api_required"

# The previous schema, then rows written with its models (the migration state's apps).
AT_PREVIOUS = f"""
from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("migrate", "drf_m2m_auth", PREVIOUS, verbosity=0)
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
apps = MigrationExecutor(connection).loader.project_state(("drf_m2m_auth", PREVIOUS)).apps
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


STUCK = """
from drf_m2m_auth.models import ResourceGrant
print("apis", *(repr(api) for api in ResourceGrant.objects.values_list("api", flat=True)))
"""


def auth_env(env: dict[str, str], **auth) -> dict[str, str]:
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "tests.upgrade_settings",
        "M2M_TEST_AUTH": json.dumps({"ISSUER": ISSUER, **auth}),
    }


def shown(env: dict[str, str]) -> str:
    return ok(manage(env, "showmigrations", "drf_m2m_auth", "--skip-checks"))  # E032 would stop it


def at_previous(env: dict[str, str], grants: list[str]) -> None:
    out = ok(manage(env, "shell", "-c", f"GRANTS = {grants!r}\nPREVIOUS = {PREVIOUS!r}\n" + AT_PREVIOUS))
    assert f"seeded {len(grants)}" in out, out
    assert f"[X] {PREVIOUS}" in shown(env) and f"[ ] {API_MIGRATION}" in shown(env)


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
    at_previous(env, ["orders", "invoices"])
    ok(manage(env, "migrate", "-v0"))
    upgraded(probe(env), ORDERS)


def fills_api_from_the_setting(env: dict[str, str]) -> None:
    env = auth_env(env, AUDIENCE=[ORDERS, BILLING], API="orders")
    at_previous(env, ["orders", "invoices"])
    ok(manage(env, "migrate", "-v0"))
    upgraded(probe(env), "orders")


def refuses_without_an_api_then_finishes(env: dict[str, str]) -> None:
    unset = auth_env(env, AUDIENCE=[ORDERS, BILLING])
    at_previous(unset, ["orders", "invoices"])
    checked = manage(unset, "migrate", "-v0")  # the system check stops it first
    assert checked.returncode != 0, checked.stdout
    assert "drf_m2m_auth.E032" in checked.stderr and "DRF_M2M_AUTH['API'] is required" in checked.stderr
    refused = manage(unset, "migrate", "-v0", "--skip-checks")  # and the migration itself refuses
    assert refused.returncode != 0, refused.stdout
    assert "RuntimeError: 2 existing grant(s) need the API they belong to" in refused.stderr, refused.stderr
    assert "Set DRF_M2M_AUTH['API'] to the identifier of the API these grants are for" in refused.stderr
    assert f"[X] {API_MIGRATION}" in shown(unset) and f"[ ] {REFUSING}" in shown(unset)
    # Meanwhile the schema is the new one and the grants are for no API: nothing guessed.
    assert ok(manage(unset, "shell", "-c", STUCK)).splitlines()[-1] == "apis '' ''"
    fixed = auth_env(env, AUDIENCE=[ORDERS, BILLING], API="orders")
    ok(manage(fixed, "migrate", "-v0"))
    upgraded(probe(fixed), "orders")


def migrates_no_grants_without_an_api(env: dict[str, str]) -> None:
    env = auth_env(env, AUDIENCE=[ORDERS, BILLING])
    at_previous(env, [])
    ok(manage(env, "migrate", "-v0", "--skip-checks"))  # the check still says E032; nothing needs the API
    assert f"[X] {REFUSING}" in shown(env)
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
def test_upgrade_to_grants_per_api_on_sqlite(tmp_path, scenario):
    scenario(sqlite_env(tmp_path / "db.sqlite3"))
