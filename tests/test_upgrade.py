"""The upgrade to (issuer, client_id) on a real SQLite file (PostgreSQL: tests/realservices/test_postgres.py)."""

from __future__ import annotations

import os

import pytest

from . import upgrade_scenario

pytestmark = pytest.mark.slow


def sqlite_env(path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TESTPROJECT_", "DJANGO_", "M2M_"))}
    env.update({"TESTPROJECT_SQLITE": str(path), "PYTHONPATH": str(upgrade_scenario.REPO)})
    return env


def test_upgrade_with_one_issuer_fills_every_row_and_keeps_every_grant(tmp_path):
    upgrade_scenario.one_issuer(sqlite_env(tmp_path / "one.sqlite3"))


def test_upgrade_with_two_issuers_guesses_nothing_and_finishes_after_m2m_set_issuer(tmp_path):
    upgrade_scenario.two_issuers(sqlite_env(tmp_path / "two.sqlite3"))
