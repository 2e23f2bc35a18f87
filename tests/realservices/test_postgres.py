"""The models, migrations, revocation and commands on a real PostgreSQL, with Redis as the cache.

The unit tests of this app are run again, unchanged, in a child pytest whose settings point at a
throwaway PostgreSQL cluster and a Redis database: same assertions, real components.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import upgrade_scenario

from .servers import REPO, django_env, manage

pytestmark = pytest.mark.slow

UNIT_TESTS = [
    "tests/test_models.py",
    "tests/test_revocation.py",
    "tests/test_commands_revoke.py",
    "tests/test_admin.py",
    "tests/test_issuer_clients.py",
]


def test_migrations_forward_backward_forward(postgres):
    db = postgres.create_database("m2m_migrations")
    env = django_env(postgres.env(db))
    result = manage(
        env,
        "shell",
        "-c",
        "; ".join(
            [
                "from django.core.management import call_command",
                "call_command('migrate', verbosity=0)",
                "call_command('migrate', 'drf_m2m_auth', 'zero', verbosity=0)",
                "call_command('migrate', verbosity=0)",
                "call_command('makemigrations', 'drf_m2m_auth', check=True, dry_run=True, verbosity=0)",
                "from drf_m2m_auth.models import RevocationState",
                "print('state rows', RevocationState.objects.count())",
            ]
        ),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "state rows 1" in result.stdout
    with postgres.connect(db) as conn:
        indexes = {
            row[0] for row in conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename LIKE 'drf_m2m_auth_%'")
        }
    assert any("(client_id, api, resource)" in i and "UNIQUE" in i for i in indexes), indexes
    assert any("drf_m2m_auth_revokedtoken" in i and "(exp)" in i for i in indexes), indexes


@pytest.mark.parametrize("scenario", ["one_issuer", "two_issuers"])
def test_upgrade_from_the_previous_release(postgres, scenario):
    """(issuer, client_id) on PostgreSQL: a database at 0002 migrates forward; with one issuer every row gets
    it and every grant still works; with two nothing is guessed until m2m_set_issuer."""
    db = postgres.create_database(f"m2m_upgrade_{scenario}")
    getattr(upgrade_scenario, scenario)(django_env(postgres.env(db)))


def test_unit_suite_on_postgresql_with_redis_cache(postgres, redis_server):
    # Redis database 1: the fleet fixtures use database 0 and the suite flushes its cache per test.
    env = django_env({**postgres.env("m2m_unit"), "TESTPROJECT_REDIS_URL": redis_server.url + "?db=1"})
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *UNIT_TESTS,
            "--ds",
            "tests.realservices.worker_settings",
            "-p",
            "no:cacheprovider",
            "-q",
            "-x",
            "-k",
            "not real_process",
            "--create-db",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(REPO),
    )
    summary = result.stdout.strip().splitlines()[-1:] or [""]
    print("\nunit suite on PostgreSQL + Redis:", summary[0])
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "passed" in summary[0] and "skipped" not in summary[0]
