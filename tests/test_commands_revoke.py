"""m2m_revoke and m2m_grant: idempotent, clear output, exit codes, nothing half-written."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from drf_m2m_auth import revocation
from drf_m2m_auth.ids import jti_digest
from drf_m2m_auth.models import Client, ResourceGrant, RevokedToken

pytestmark = pytest.mark.django_db


def run(name, *args):
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def grants(client_id):
    return sorted(ResourceGrant.objects.filter(client__client_id=client_id).values_list("resource", flat=True))


# --- m2m_grant ---------------------------------------------------------------------------------------


def test_grant_registers_with_create_and_is_idempotent():
    out, _ = run("m2m_grant", "svc-a", "orders", "invoices", "--create", "--name", "Service A")
    assert "registered" in out and "granted 'orders'" in out and "granted 'invoices'" in out
    assert Client.objects.get(client_id="svc-a").name == "Service A"
    out, _ = run("m2m_grant", "svc-a", "orders", "payroll")
    assert "already granted 'orders'" in out and "granted 'payroll'" in out
    assert grants("svc-a") == ["invoices", "orders", "payroll"]
    assert revocation.resources_for(revocation.only_issuer(), "svc-a") == {"invoices", "orders", "payroll"}


def test_grant_remove_is_idempotent():
    run("m2m_grant", "svc-a", "orders", "payroll", "--create")
    out, _ = run("m2m_grant", "svc-a", "payroll", "ghost", "--remove")
    assert "removed 'payroll'" in out and "had no grant for 'ghost'" in out
    assert grants("svc-a") == ["orders"]
    assert revocation.resources_for(revocation.only_issuer(), "svc-a") == {"orders"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["nobody", "orders"], "unknown client id 'nobody'"),
        (["svc-a", "orders", "orders"], "given twice"),
        (["svc-a", "orders", "bad resource"], "malformed"),
        (["svc-a@clients", "orders", "--create"], "without Auth0's '@clients'"),
        (["x" * 256, "orders", "--create"], "at most 255"),
        (["svc\x00a", "orders", "--create"], r"control or format characters \(U\+0000\)"),
        (["svc\na", "orders", "--create"], r"\(U\+000A\)"),
        (["svc\u202ea", "orders", "--create"], r"\(U\+202E\)"),
        (["svc\u200ba", "orders", "--create"], r"\(U\+200B\)"),
        ([" svc-b", "orders", "--create"], "surrounding spaces"),
        (["svc-a", "orders", "--name", "x"], "--name goes with --create"),
        (["svc-a", "orders", "--remove", "--create"], "make no sense"),
    ],
)
def test_grant_bad_input_writes_nothing(args, message):
    Client.objects.create(client_id="svc-a", name="A")
    with pytest.raises(CommandError, match=message):
        run("m2m_grant", *args)
    assert grants("svc-a") == [] and Client.objects.count() == 1


# --- m2m_revoke --------------------------------------------------------------------------------------


def test_revoke_client_rejects_older_tokens():
    run("m2m_grant", "svc-a", "orders", "--create")
    out, _ = run("m2m_revoke", "--client", "svc-a")
    assert "every token issued before" in out
    cut = Client.objects.get(client_id="svc-a").tokens_valid_after
    assert cut is not None and abs((timezone.now() - cut).total_seconds()) < 5
    assert revocation.client_state(revocation.only_issuer(), "svc-a").valid_after == cut.timestamp()


def test_deactivate_and_activate_are_idempotent():
    Client.objects.create(client_id="svc-a", name="A")
    assert "now inactive" in run("m2m_revoke", "--deactivate", "svc-a")[0]
    assert "already inactive" in run("m2m_revoke", "--deactivate", "svc-a")[0]
    assert not revocation.client_state(revocation.only_issuer(), "svc-a").active
    assert "now active" in run("m2m_revoke", "--activate", "svc-a")[0]
    assert "already active" in run("m2m_revoke", "--activate", "svc-a")[0]
    assert revocation.client_state(revocation.only_issuer(), "svc-a").active


@pytest.mark.parametrize(
    "exp",
    [
        lambda now: str(int(now.timestamp()) + 600),
        lambda now: (now + dt.timedelta(minutes=10)).isoformat(),
        lambda now: (now + dt.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    ],
    ids=["numericdate", "iso-offset", "iso-z"],
)
def test_revoke_jti(exp):
    now = timezone.now()
    out, _ = run("m2m_revoke", "--jti", "abc-123", "--exp", exp(now), "--jti-client", "svc-a", "--reason", "leak")
    assert f"jti 'abc-123' at {revocation.only_issuer()}: rejected until" in out
    entry = RevokedToken.objects.denying("abc-123").get()
    assert (entry.client_id, entry.reason) == ("svc-a", "leak")
    assert 590 <= (entry.exp - now).total_seconds() <= 610
    assert "already rejected" in run("m2m_revoke", "--jti", "abc-123", "--exp", exp(now))[0]
    assert RevokedToken.objects.count() == 1
    assert jti_digest("abc-123") in revocation.process_cache().sync(wait=True).jtis[revocation.only_issuer()]


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "nothing to do"),
        (["--client", "nobody"], "unknown client id\\(s\\) at issuer '[^']+': nobody"),
        (["--client", "svc-a", "--deactivate", "nobody"], "unknown client id\\(s\\) at issuer '[^']+': nobody"),
        (["--deactivate", "svc-a", "--activate", "svc-a"], "both --activate and --deactivate"),
        (["--jti", "abc"], "--jti needs --exp"),
        (["--jti", "", "--exp", "4102444800"], "empty"),
        (["--jti", "abc", "--exp", "tomorrow"], "not a date"),
        (["--jti", "abc", "--exp", "2030-01-01T00:00:00"], "no timezone"),
        (["--jti", "abc", "--exp", "2020-01-01T00:00:00Z"], "in the past"),
        (["--jti", "abc", "--exp", "4102444800000"], "out of range"),
        (["--jti", "abc", "--exp", "nan"], "out of range"),
        (["--jti", "abc", "--exp", "4102444800"], "more than a year"),
        (["--jti", "abc", "--exp", "2030-02-30T00:00:00Z"], "not a date"),
        (["--exp", "4102444800"], "go with --jti"),
    ],
)
def test_revoke_bad_input_writes_nothing(args, message):
    Client.objects.create(client_id="svc-a", name="A")
    before = Client.objects.get().revision
    with pytest.raises(CommandError, match=message):
        run("m2m_revoke", *args)
    client = Client.objects.get()
    assert (client.revision, client.is_active, client.tokens_valid_after) == (before, True, None)
    assert not RevokedToken.objects.exists()


def test_combined_revocation_is_all_or_nothing():
    Client.objects.create(client_id="svc-a", name="A")
    with pytest.raises(CommandError):
        run("m2m_revoke", "--deactivate", "svc-a", "--jti", "abc", "--exp", "2020-01-01T00:00:00Z")
    assert Client.objects.get().is_active


LOCMEM_NOTICE = {  # testproject's default cache: each process has its own
    "announced": False,
    "cache": "default",
    "cross_process_cache": False,
    "other_processes_within_s": 60.0,
}


LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "cmd-json"}}


def test_json_output(settings):
    import json

    settings.CACHES = LOCMEM  # what the tools say depends on the cache (the PostgreSQL run uses Redis)
    out, _ = run("m2m_grant", "svc-a", "orders", "--create", "--json")
    iss = revocation.only_issuer()
    api = "https://service-b.example"  # this project's API: its single audience
    assert json.loads(out) == {
        "issuer": iss,
        "client_id": "svc-a",
        "api": api,
        **LOCMEM_NOTICE,
        "changes": [
            {"action": "register", "issuer": iss, "client_id": "svc-a", "changed": True},
            {"action": "grant", "api": api, "resource": "orders", "changed": True},
        ],
    }
    out, _ = run("m2m_revoke", "--deactivate", "svc-a", "--json")
    assert json.loads(out) == {
        **LOCMEM_NOTICE,
        "changes": [{"action": "deactivate", "issuer": iss, "client_id": "svc-a", "changed": True}],
    }


def test_tools_say_how_soon_other_processes_see_a_change(settings, tmp_path):
    """'announced' only when a cache other processes read accepted the generation."""
    import json

    settings.CACHES = LOCMEM
    Client.objects.create(client_id="svc-a", name="A")
    out, _ = run("m2m_revoke", "--client", "svc-a")
    assert "other processes see it within 60 s (REVOCATION_DB_CHECK_INTERVAL)" in out
    assert "'default' is private to each process" in out
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path)}
    }
    out, _ = run("m2m_revoke", "--deactivate", "svc-a")
    assert "Every process sharing the cache 'default' sees it within about 1 s." in out
    out, _ = run("m2m_grant", "svc-a", "orders", "--json")
    assert json.loads(out)["announced"] is True and json.loads(out)["other_processes_within_s"] == 1.0
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "CACHE": None, "REVOCATION_DB_CHECK_INTERVAL": 15}
    out, _ = run("m2m_grant", "svc-a", "invoices")
    assert "within 15 s (REVOCATION_DB_CHECK_INTERVAL), because no shared cache is configured" in out


def test_audit_log_and_messages_escape_a_stored_client_id(caplog):
    """A row stored before validation existed (raw SQL) cannot forge a log line."""
    client = Client(client_id="svc\nFORGED audit line", name="A")
    Client.objects.bulk_create([client])
    with caplog.at_level("INFO", logger="drf_m2m_auth.audit"):
        out, _ = run("m2m_revoke", "--client", "svc\nFORGED audit line")
    assert "\n" not in caplog.records[0].getMessage() and "svc\\u000aFORGED" in caplog.text
    assert "svc\\u000aFORGED" in out


def test_purge_expired():
    RevokedToken.objects.create(jti="old", exp=timezone.now() - dt.timedelta(seconds=1))
    assert "purged 1 expired deny-list entry" in run("m2m_revoke", "--purge-expired")[0]


@pytest.mark.django_db(transaction=True)
def test_cache_down_warns_but_the_change_is_stored(settings):
    from tests.test_revocation import FlakyCache

    settings.CACHES = {"default": {"BACKEND": "tests.test_revocation.FlakyCache", "LOCATION": "cmd"}}
    Client.objects.create(client_id="svc-a", name="A")
    FlakyCache.down = True
    try:
        out, err = run("m2m_revoke", "--deactivate", "svc-a")
    finally:
        FlakyCache.down = False
    assert "now inactive" in out and "cache is unreachable" in err
    assert not Client.objects.get().is_active


def test_exit_codes_from_a_real_process(tmp_path):
    """As an operator's shell sees them: 0 done, 1 bad input, 2 usage."""
    env = {"TESTPROJECT_SQLITE": str(tmp_path / "db.sqlite3"), "PATH": "/usr/bin:/bin"}
    manage = [sys.executable, "testproject/manage.py"]

    def code(*args):
        return subprocess.run(manage + list(args), env=env, capture_output=True, text=True, timeout=60)

    assert code("migrate", "-v0").returncode == 0
    done = code("m2m_grant", "svc-a", "orders", "--create")
    assert done.returncode == 0, done.stderr
    bad = code("m2m_revoke", "--client", "nobody")
    assert bad.returncode == 1 and "unknown client id(s) at issuer" in bad.stderr and ": nobody" in bad.stderr
    usage = code("m2m_revoke", "--bogus")
    assert usage.returncode == 2
