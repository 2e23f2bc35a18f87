"""M2MRouter puts drf_m2m_auth's tables, reads and writes on DRF_M2M_AUTH["DATABASE"] only."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from drf_m2m_auth.routers import M2MRouter

ROOT = Path(__file__).resolve().parent.parent


class _Meta:
    def __init__(self, app_label):
        self.app_label = app_label


class _Model:
    def __init__(self, app_label):
        self._meta = _Meta(app_label)


def test_routes_only_its_own_app(monkeypatch):
    monkeypatch.setattr(M2MRouter, "alias", staticmethod(lambda: "fleet"))
    router = M2MRouter()
    ours, theirs = _Model("drf_m2m_auth"), _Model("auth")
    assert router.db_for_read(ours) == router.db_for_write(ours) == "fleet"
    assert router.db_for_read(theirs) is None and router.db_for_write(theirs) is None
    assert router.allow_migrate("fleet", "drf_m2m_auth") is True
    assert router.allow_migrate("default", "drf_m2m_auth") is False
    assert router.allow_migrate("default", "auth") is None and router.allow_migrate("fleet", "auth") is None
    assert router.allow_relation(ours, ours) is True and router.allow_relation(ours, theirs) is None


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("select name from sqlite_master where type='table'")}


def test_migrate_and_writes_land_in_the_named_database(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.router_support.settings", "ROUTER_TEST_DIR": str(tmp_path)}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    manage = [sys.executable, str(ROOT / "testproject" / "manage.py")]
    # Each service migrates its own database; the fleet database is migrated for this app only.
    subprocess.run([*manage, "migrate", "--database", "default", "-v0"], env=env, check=True, timeout=120)
    subprocess.run([*manage, "migrate", "drf_m2m_auth", "--database", "fleet", "-v0"], env=env, check=True, timeout=120)
    default, fleet = _tables(tmp_path / "default.sqlite3"), _tables(tmp_path / "fleet.sqlite3")
    ours = {t for t in default | fleet if t.startswith("drf_m2m_auth_")}
    assert ours and ours <= fleet and not ours & default
    assert "auth_user" in default and "auth_user" not in fleet
    script = (
        "import django; django.setup()\n"
        "from drf_m2m_auth.models import Client\n"
        "Client.objects.create(client_id='svc-a')\n"
        "print(Client.objects.get(client_id='svc-a').client_id)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, check=True, timeout=120, capture_output=True, text=True, cwd=ROOT
    )
    assert done.stdout.strip() == "svc-a"
    with sqlite3.connect(tmp_path / "fleet.sqlite3") as db:
        assert db.execute("select client_id from drf_m2m_auth_client").fetchall() == [("svc-a",)]


def test_database_must_name_a_configured_alias():
    from drf_m2m_auth.conf import validate

    _, problems = validate(
        {"ISSUER": "https://a/", "AUDIENCE": "x", "DATABASE": "flet"}, {"default": {}}, ["default", "fleet"]
    )
    (problem,) = problems
    assert problem.check_id == "drf_m2m_auth.E025" and "'flet'" in problem.message and "fleet" in problem.message
