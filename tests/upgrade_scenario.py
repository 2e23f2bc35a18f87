"""The upgrade to (issuer, client_id), played on a real database file or server.

A database migrated with the previous release (0002) holds clients, grants, a deny-listed jti and a
tombstone. ``one_issuer`` migrates it forward with one configured issuer: every row gets that
issuer and every grant and revocation still works. ``two_issuers`` does it with two configured:
nothing is guessed, 0004 refuses naming ``m2m_set_issuer``, and meanwhile the rows without an
issuer are revoked at both issuers and grant nothing at either; ``m2m_set_issuer`` then fills
them and the migration finishes. Every step is a real ``manage.py`` process; ``env`` says which
database (SQLite file or PostgreSQL) through tests/upgrade_settings.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ISSUER_A = "https://tenant-a.example/"
ISSUER_B = "https://tenant-b.example/"
AUDIENCE = "https://service-b.example"

# Rows written with the 0002 models (the previous release), through the migration state's apps.
SEED_AT_0002 = """
import datetime as dt
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
apps = MigrationExecutor(connection).loader.project_state(("drf_m2m_auth", "0002_jti_digest_tombstones")).apps
Client = apps.get_model("drf_m2m_auth", "Client")
Grant = apps.get_model("drf_m2m_auth", "ResourceGrant")
Revoked = apps.get_model("drf_m2m_auth", "RevokedToken")
Deleted = apps.get_model("drf_m2m_auth", "DeletedClient")
a = Client.objects.create(client_id="svc-a", name="A", revision=1)
Grant.objects.create(client=a, resource="orders")
Grant.objects.create(client=a, resource="invoices")
Client.objects.create(client_id="svc-off", name="Off", is_active=False, revision=2)
import hashlib
Revoked.objects.create(jti_sha256=hashlib.sha256(b"leaked").hexdigest(), jti_display="leaked",
                       exp=timezone.now() + dt.timedelta(hours=2))
Deleted.objects.create(client_id="svc-gone", was_active=False, deleted=timezone.now())
print("seeded")
"""

# What the request path answers, as (issuer, client_id) pairs: revocation.check and resources_for
# are exactly what M2MJWTAuthentication and HasResourceGrant call.
PROBE = """
import json, time
from drf_m2m_auth import revocation
from drf_m2m_auth.errors import InvalidToken
from drf_m2m_auth.principal import AccessToken
def verdict(iss, cid, jti=None):
    now = time.time()
    claims = {"iss": iss, "sub": cid + "@clients", "aud": "x", "iat": now, "exp": now + 600}
    if jti:
        claims["jti"] = jti
    try:
        revocation.check(AccessToken(claims, frozenset()))
    except InvalidToken as exc:
        return exc.reason
    granted = revocation.resources_for(iss, cid)
    return "unregistered" if granted is None else sorted(granted)
from drf_m2m_auth.models import Client
out = {"rows": dict(Client.objects.values_list("client_id", "issuer"))}
for iss in ISSUERS:
    out[iss] = {c: verdict(iss, c) for c in ("svc-a", "svc-off", "svc-gone")}
    out[iss]["jti"] = verdict(iss, "svc-a", jti="leaked")
print("PROBE" + json.dumps(out))
"""


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "testproject" / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=str(REPO),
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def with_issuers(env: dict[str, str], *issuers: str) -> dict[str, str]:
    """``env`` with these issuers configured (the ISSUER string, or the ISSUER list)."""
    auth = {"ISSUER": issuers[0] if len(issuers) == 1 else list(issuers), "AUDIENCE": AUDIENCE}
    return {**env, "DJANGO_SETTINGS_MODULE": "tests.upgrade_settings", "M2M_TEST_AUTH": json.dumps(auth)}


def probe(env: dict[str, str], *issuers: str) -> dict:
    out = ok(manage(env, "shell", "-c", f"ISSUERS = {list(issuers)!r}\n" + PROBE))
    line = next(text for text in out.splitlines() if text.startswith("PROBE"))
    return json.loads(line[len("PROBE") :])


def at_previous_release(env: dict[str, str]) -> None:
    ok(manage(env, "migrate", "-v0"))  # the other apps
    ok(manage(env, "migrate", "drf_m2m_auth", "0002", "-v0"))
    assert "seeded" in ok(manage(env, "shell", "-c", SEED_AT_0002))


def one_issuer(env: dict[str, str]) -> None:
    env = with_issuers(env, ISSUER_A)
    at_previous_release(env)
    ok(manage(env, "migrate", "-v0"))
    found = probe(env, ISSUER_A)
    assert found["rows"] == {"svc-a": ISSUER_A, "svc-off": ISSUER_A}
    seen = found[ISSUER_A]
    assert seen == {
        "svc-a": ["invoices", "orders"],  # every existing grant still works
        "svc-off": "client_inactive",
        "svc-gone": "client_inactive",  # the tombstone got the issuer too
        "jti": "jti_revoked",
    }, seen


def two_issuers(env: dict[str, str]) -> None:
    env = with_issuers(env, ISSUER_A, ISSUER_B)
    at_previous_release(env)
    refused = manage(env, "migrate", "-v0")
    assert refused.returncode != 0
    assert "m2m_set_issuer --issuer" in refused.stderr and "'svc-a'" in refused.stderr, refused.stderr
    assert "[X] 0004_grant_api_change_sequence" in ok(manage(env, "showmigrations", "drf_m2m_auth"))
    found = probe(env, ISSUER_A, ISSUER_B)
    assert found.pop("rows") == {"svc-a": None, "svc-off": None}  # nothing guessed
    # Meanwhile: revoked at both issuers, granted at neither (never wider access).
    for iss, seen in found.items():
        assert seen == {
            "svc-a": "unregistered",
            "svc-off": "client_inactive",
            "svc-gone": "client_inactive",
            "jti": "jti_revoked",
        }, (iss, seen)
    unknown = manage(env, "m2m_set_issuer", "--issuer", "https://nobody.example/")
    assert unknown.returncode == 1 and "not configured" in unknown.stderr
    assert "1 client(s) now belong to" in ok(manage(env, "m2m_set_issuer", "--issuer", ISSUER_B, "--client", "svc-a"))
    assert "Every client has an issuer" in ok(manage(env, "m2m_set_issuer", "--issuer", ISSUER_A))
    ok(manage(env, "migrate", "-v0"))
    seen = probe(env, ISSUER_A, ISSUER_B)
    assert seen["rows"] == {"svc-a": ISSUER_B, "svc-off": ISSUER_A}
    assert seen[ISSUER_B]["svc-a"] == ["invoices", "orders"]
    assert seen[ISSUER_A]["svc-a"] == "unregistered"  # B's grants give A's client of that name nothing
    assert seen[ISSUER_A]["svc-off"] == "client_inactive" and seen[ISSUER_B]["svc-off"] == "unregistered"
    # The tombstone and the jti had no issuer: they keep applying at both.
    assert seen[ISSUER_B]["svc-gone"] == seen[ISSUER_A]["svc-gone"] == "client_inactive"
    assert seen[ISSUER_A]["jti"] == seen[ISSUER_B]["jti"] == "jti_revoked"
