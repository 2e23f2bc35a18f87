"""Revocation at fleet scale: what loading and reloading the revocation snapshot costs.

Not a test. Builds 50,000 clients x 5 grants + 100,000 revoked jtis with bulk_create in a temporary
database (SQLite; PostgreSQL too when a ``postgres`` binary is installed: a throwaway cluster on a
unix socket, tests/realservices/servers.py's PostgresServer), then, in a fresh process:

- the first load of the snapshot by a RevocationCache: wall time and the growth of the resident
  set (RSS) it causes (the connection is opened and the models imported before the clock starts);
- one revoked client: the write (Client.deactivate(), committed), then the reload by a second
  RevocationCache (two instances stand for two processes: the second learns of the change and
  re-reads the database, exactly as another worker would). The reload must take the incremental
  path (the change sequence: only that client is re-read); the run fails if it loads everything;
- one revoked jti the same (RevokedToken.objects.revoke);
- ``RevocationCache.check`` per call (timeit; the snapshot is not due for a reload meanwhile; the
  same AccessToken object each time, as the verifier's cache hands it out).

The write of a change is mostly its COMMIT, i.e. the disk's fsync (SQLite's rollback journal);
the reload is what every worker of the fleet pays.

    python benchmarks/scale.py                      # both engines when available, ~2-4 minutes
    python benchmarks/scale.py --engines sqlite --clients 5000 --jtis 10000   # a quick look

Prints a table and writes JSON (``--json``, default benchmarks/results/scale.json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ("orders", "billing", "invoices", "reports", "shipping")
CHANGES = 7  # each "one change" figure is the median of this many changes


# --- the child processes: Django configured from the environment -------------------------------------


def _setup_django() -> None:
    import django
    from django.conf import settings

    if os.environ["SCALE_ENGINE"] == "postgres":
        database = {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ["SCALE_PG_HOST"],
            "USER": os.environ["SCALE_PG_USER"],
            "NAME": os.environ["SCALE_PG_NAME"],
        }
    else:
        database = {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["SCALE_SQLITE"]}
    settings.configure(
        DEBUG=False,
        SECRET_KEY="scale-benchmark",
        USE_TZ=True,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework", "drf_m2m_auth"],
        DATABASES={"default": database},
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        DRF_M2M_AUTH={"ISSUER": "https://issuer.example/", "AUDIENCE": "https://api.example/", "CACHE": None},
        LOGGING_CONFIG=None,
    )
    django.setup()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def build(clients: int, grants: int, jtis: int) -> dict:
    from django.core.management import call_command
    from django.utils import timezone

    from drf_m2m_auth.ids import jti_digest
    from drf_m2m_auth.models import Client, ResourceGrant, RevokedToken

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    Client.objects.bulk_create(
        (Client(client_id=f"client-{i:06d}", name=f"Client {i}") for i in range(clients)), batch_size=2000
    )
    pks = list(Client.objects.order_by("pk").values_list("pk", flat=True))
    ResourceGrant.objects.bulk_create(
        (ResourceGrant(client_id=pk, resource=r) for pk in pks for r in RESOURCES[:grants]), batch_size=5000
    )
    exp = timezone.now() + dt.timedelta(days=1)
    RevokedToken.objects.bulk_create(
        (
            RevokedToken(jti_sha256=jti_digest(f"jti-{i}"), jti_display=f"jti-{i}", client_id="client-000001", exp=exp)
            for i in range(jtis)
        ),
        batch_size=5000,
    )
    from django.db import connection

    if connection.vendor == "postgresql":  # statistics, as autovacuum gathers them soon after a bulk load:
        with connection.cursor() as cursor:  # without them the planner scans the deny-list to purge it
            cursor.execute("ANALYZE")
    return {"build_s": time.perf_counter() - started}


def measure(checks: int) -> dict:
    from django.utils import timezone

    from drf_m2m_auth.models import Client, RevokedToken
    from drf_m2m_auth.revocation_cache import RevocationCache
    from drf_m2m_auth.revocation_loader import DatabaseLoader

    def cache() -> RevocationCache:  # no shared cache: the reload is forced with mark_dirty()
        loader = DatabaseLoader(api="https://api.example/")
        return RevocationCache(cache=None, check_interval=3600, db_check_interval=None, loader=loader)

    counts = {"clients": Client.objects.count(), "revoked_jtis": RevokedToken.objects.count()}
    gc.collect()
    rss_before = _rss_bytes()
    first = cache()
    started = time.perf_counter()
    first.sync(wait=True)
    first_load_s = time.perf_counter() - started
    gc.collect()
    rss_after = _rss_bytes()
    assert len(first.snapshot.by_pk) == counts["clients"] and len(first.snapshot.denied) == counts["revoked_jtis"]

    second = cache()
    started = time.perf_counter()
    second.sync(wait=True)
    second_load_s = time.perf_counter() - started

    def change(write, probe) -> dict:
        writes, reloads = [], []
        for k in range(CHANGES):
            started = time.perf_counter()
            write(k)
            written = time.perf_counter()
            second.mark_dirty()
            second.sync(wait=True)
            reloads.append(time.perf_counter() - written)
            writes.append(written - started)
            assert probe(k), "the second instance did not see the change"
        assert second.loader.full_loads == 1, "a change must not reload everything"
        return {
            "write_ms": statistics.median(writes) * 1e3,
            "reload_ms": statistics.median(reloads) * 1e3,
            "total_ms": statistics.median(w + r for w, r in zip(writes, reloads, strict=True)) * 1e3,
        }

    victims = [Client.objects.get(client_id=f"client-{1000 + k:06d}") for k in range(CHANGES)]
    client_change = change(
        lambda k: victims[k].deactivate(),
        lambda k: not second.client_state(victims[k].issuer, victims[k].client_id).active,
    )
    exp = timezone.now() + dt.timedelta(hours=1)
    from drf_m2m_auth.ids import jti_digest

    jti_change = change(
        lambda k: RevokedToken.objects.revoke(f"leaked-{k}", exp),
        lambda k: jti_digest(f"leaked-{k}") in second.snapshot.denied,
    )

    from drf_m2m_auth.principal import AccessToken

    now = time.time()
    claims = {"iss": "https://issuer.example/", "sub": "client-000007", "iat": now, "exp": now + 600}
    token = AccessToken({**claims, "jti": "not-revoked"}, frozenset())
    first.check(token)  # judged once; the verifier's cache hands the same object to the next request
    timer = timeit.Timer(lambda: first.check(token))
    per_call = [t / checks for t in timer.repeat(repeat=5, number=checks)]
    return {
        **counts,
        "first_load_s": first_load_s,
        "first_load_rss_mb": (rss_after - rss_before) / 2**20,
        "second_load_s": second_load_s,
        "client_change": client_change,
        "jti_change": jti_change,
        "check_us": {"min": min(per_call) * 1e6, "median": statistics.median(per_call) * 1e6},
    }


def child(mode: str) -> None:
    _setup_django()
    args = json.loads(os.environ["SCALE_ARGS"])
    result = build(args["clients"], args["grants"], args["jtis"]) if mode == "build" else measure(args["checks"])
    print("SCALE-RESULT " + json.dumps(result), flush=True)


# --- the parent: one database per engine, a fresh process per phase -------------------------------


def run_child(mode: str, env: dict[str, str], timeout: float) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, f"--child={mode}"],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(ROOT),
    )
    for line in proc.stdout.splitlines():
        if line.startswith("SCALE-RESULT "):
            return json.loads(line[len("SCALE-RESULT ") :])
    raise RuntimeError(f"{mode} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def run_engine(engine: str, args: argparse.Namespace) -> dict:
    params = {"clients": args.clients, "grants": args.grants, "jtis": args.jtis, "checks": args.checks}
    env = {"SCALE_ENGINE": engine, "SCALE_ARGS": json.dumps(params)}
    tmp = Path(tempfile.mkdtemp(prefix="m2m-scale-"))
    server = None
    try:
        if engine == "postgres":
            sys.path.insert(0, str(ROOT))
            from tests.realservices.servers import PostgresServer

            server = PostgresServer().start()
            env.update(SCALE_PG_HOST=server.host, SCALE_PG_USER=server.superuser, SCALE_PG_NAME="scale")
            server.create_database("scale")
        else:
            env["SCALE_SQLITE"] = str(tmp / "scale.sqlite3")
        print(f"[{engine}] building {args.clients} clients x {args.grants} grants + {args.jtis} jtis ...", flush=True)
        built = run_child("build", env, args.timeout)
        print(f"[{engine}] built in {built['build_s']:.1f} s; measuring in a fresh process ...", flush=True)
        return {**built, **run_child("measure", env, args.timeout)}
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


TARGETS = {"first_load_s": 1.5, "first_load_rss_mb": 100, "change_ms": 10, "check_us": 0.2}


def table(results: dict[str, dict]) -> str:
    rows = [
        ("first load (s)", lambda r: f"{r['first_load_s']:.2f}", "<= 1.5"),
        ("first load, RSS growth (MB)", lambda r: f"{r['first_load_rss_mb']:.0f}", "<= 100"),
        ("second instance's load (s)", lambda r: f"{r['second_load_s']:.2f}", ""),
        ("one revoked client: write (ms)", lambda r: f"{r['client_change']['write_ms']:.1f}", ""),
        ("one revoked client: reload (ms)", lambda r: f"{r['client_change']['reload_ms']:.1f}", ""),
        ("one revoked client: total (ms)", lambda r: f"{r['client_change']['total_ms']:.1f}", "<= 10"),
        ("one revoked jti: write (ms)", lambda r: f"{r['jti_change']['write_ms']:.1f}", ""),
        ("one revoked jti: reload (ms)", lambda r: f"{r['jti_change']['reload_ms']:.1f}", ""),
        ("one revoked jti: total (ms)", lambda r: f"{r['jti_change']['total_ms']:.1f}", "<= 10"),
        (
            "revocation check, min / median (us)",
            lambda r: f"{r['check_us']['min']:.2f} / {r['check_us']['median']:.2f}",
            "~0.2",
        ),
    ]
    engines = list(results)
    head = ["", *engines, "target"]
    body = [[name, *(fmt(results[e]) for e in engines), target] for name, fmt, target in rows]
    widths = [max(len(str(row[i])) for row in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--engines", default="sqlite,postgres", help="sqlite,postgres (postgres if installed)")
    parser.add_argument("--clients", type=int, default=50_000)
    parser.add_argument("--grants", type=int, default=5, help=f"per client, at most {len(RESOURCES)}")
    parser.add_argument("--jtis", type=int, default=100_000)
    parser.add_argument("--checks", type=int, default=200_000, help="calls per timeit repeat")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per phase")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "scale.json"))
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    args.grants = min(args.grants, len(RESOURCES))
    results = {}
    for engine in args.engines.split(","):
        if engine == "postgres" and shutil.which("postgres") is None and not Path("/usr/lib/postgresql").exists():
            print("[postgres] no postgres binary: skipped", flush=True)
            continue
        results[engine] = run_engine(engine, args)
    print()
    print(table(results))
    import django

    out = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "revision": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip(),
        "machine": {"python": platform.python_version(), "django": django.get_version(), "cpus": os.cpu_count()},
        "data_set": {"clients": args.clients, "grants_per_client": args.grants, "revoked_jtis": args.jtis},
        "targets": TARGETS,
        "results": results,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    main()
