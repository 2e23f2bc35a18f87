"""The change sequence on a real PostgreSQL: concurrent writers never make a reader skip a change.

The scenario runs in a child process whose settings point at a throwaway PostgreSQL database
(``scenario()`` below); writers and the reader are threads, each with its own connection.

1. Writer A takes its number and keeps its transaction open; writer B starts its change meanwhile
   and waits on the counter row (pg_locks shows it); a reader that reloads while A is open sees
   neither; A commits, B gets the next number only then, and commits after A. The reader ends with
   both, and never held a version without a change numbered at or below it.
2. Four writers commit 60 changes in an order the database decides, while a reader reloads in a
   loop: after every reload at version V, every change numbered <= V is in its snapshot.
"""

from __future__ import annotations

import json
import random
import threading
import time

import pytest

from .servers import django_env, manage

pytestmark = pytest.mark.slow

RESULT = "CHANGE-SEQUENCE-RESULT "


def test_concurrent_writers_and_a_reader_on_postgresql(postgres):
    db = postgres.create_database("m2m_change_sequence")
    started = time.monotonic()
    result = manage(
        django_env(postgres.env(db)),
        "shell",
        "-c",
        "from tests.realservices.test_change_sequence_pg import scenario; scenario()",
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith(RESULT))
    report = json.loads(line[len(RESULT) :])
    first = report["two_writers"]
    assert first["b_number"] == first["a_number"] + 1
    assert first["b_waited_on_lock"] and first["b_numbered_after_a_committed"] and first["b_committed_after_a"]
    assert first["versions_seen"] == [first["base"], first["a_number"], first["b_number"]]
    second = report["many_writers"]
    assert second["changes"] == 60 and second["reloads"] >= 5 and second["full_loads"] == 1
    assert second["final_version"] == second["highest_number"]
    assert time.monotonic() - started < 40


# --- the child process ---------------------------------------------------------------------------


def scenario() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    report = {"two_writers": two_writers(), "many_writers": many_writers()}
    print(RESULT + json.dumps(report), flush=True)


def _reader():
    from drf_m2m_auth import revocation
    from drf_m2m_auth.testing import FakeClock

    reader = revocation.build(cache=None, clock=FakeClock())  # another process: its own memory
    reader.sync(wait=True)
    return reader


def _reload(reader):
    reader.mark_dirty()
    return reader.sync(wait=True)


def _active(snap, client_id):
    from drf_m2m_auth import revocation

    return snap.clients[revocation.only_issuer()][client_id].active


def _sequence() -> int:
    from drf_m2m_auth.models import RevocationState

    return RevocationState.objects.get(pk=1).sequence


def _waiting_on_a_lock() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0]


def two_writers() -> dict:
    from django.db import connection, transaction

    from drf_m2m_auth.models import Client

    for name in ("svc-a", "svc-b"):
        Client.objects.create(client_id=name, name=name)
    reader = _reader()
    base = reader.snapshot.sequence
    out: dict = {}
    a_numbered, a_may_commit, b_started, b_may_commit = (threading.Event() for _ in range(4))
    errors: list[BaseException] = []

    def writer_a():
        try:
            with transaction.atomic():
                Client.objects.filter(client_id="svc-a").deactivate()
                out["a_number"] = _sequence()  # our own, uncommitted number
                a_numbered.set()
                assert a_may_commit.wait(15)
            out["a_committed"] = time.monotonic()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    def writer_b():
        try:
            assert a_numbered.wait(15)
            with transaction.atomic():
                b_started.set()
                Client.objects.filter(client_id="svc-b").deactivate()  # waits for A's counter row
                out["b_numbered"] = time.monotonic()
                out["b_number"] = _sequence()
                assert b_may_commit.wait(15)
            out["b_committed"] = time.monotonic()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer_a), threading.Thread(target=writer_b)]
    for thread in threads:
        thread.start()
    versions = []
    try:
        assert a_numbered.wait(15) and b_started.wait(15)
        deadline = time.monotonic() + 10
        while not _waiting_on_a_lock() and time.monotonic() < deadline:
            time.sleep(0.02)
        out["b_waited_on_lock"] = _waiting_on_a_lock() >= 1 and "b_number" not in out
        snap = _reload(reader)  # A open, B blocked: nothing committed yet
        versions.append(snap.sequence)
        assert _active(snap, "svc-a") and _active(snap, "svc-b")
        a_may_commit.set()
        threads[0].join(15)
        deadline = time.monotonic() + 10
        while "b_number" not in out and time.monotonic() < deadline:
            time.sleep(0.01)
        snap = _reload(reader)  # A committed, B numbered but open
        versions.append(snap.sequence)
        assert snap.sequence == out["a_number"] and not _active(snap, "svc-a") and _active(snap, "svc-b")
        b_may_commit.set()
        threads[1].join(15)
        snap = _reload(reader)
        versions.append(snap.sequence)
        assert not _active(snap, "svc-a") and not _active(snap, "svc-b")
    finally:
        a_may_commit.set()
        b_may_commit.set()
        for thread in threads:
            thread.join(15)
    if errors:
        raise errors[0]
    assert reader.loader.full_loads == 1
    return {
        "base": base,
        "a_number": out["a_number"],
        "b_number": out["b_number"],
        "b_waited_on_lock": out["b_waited_on_lock"],
        "b_numbered_after_a_committed": out["b_numbered"] > out["a_committed"],
        "b_committed_after_a": out["b_committed"] > out["a_committed"],
        "versions_seen": versions,
    }


def many_writers(writers: int = 4, each: int = 15) -> dict:
    import datetime as dt

    from django.db import connection, transaction
    from django.utils import timezone

    from drf_m2m_auth.ids import jti_digest
    from drf_m2m_auth.models import Client, RevokedToken

    Client.objects.bulk_create([Client(client_id=f"many-{i}", name=str(i)) for i in range(writers * each)])
    reader = _reader()
    numbered: dict[int, tuple[str, str]] = {}  # number -> (kind, key), recorded before the commit
    lock = threading.Lock()
    done = threading.Event()
    errors: list[BaseException] = []
    exp = timezone.now() + dt.timedelta(hours=1)

    def writer(w: int) -> None:
        rng = random.Random(w)
        try:
            for k in range(each):
                i = w * each + k
                with transaction.atomic():
                    if rng.random() < 0.5:
                        Client.objects.filter(client_id=f"many-{i}").deactivate()
                        change = ("client", f"many-{i}")
                    else:
                        RevokedToken.objects.revoke(f"many-jti-{i}", exp)
                        change = ("jti", jti_digest(f"many-jti-{i}"))
                    with lock:
                        numbered[_sequence()] = change
                    time.sleep(rng.uniform(0, 0.01))  # hold the transaction: others queue behind
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def missing(snap) -> list[int]:
        with lock:
            due = [(n, change) for n, change in numbered.items() if n <= snap.sequence]
        out = []
        for n, (kind, key) in due:
            seen = key in snap.denied if kind == "jti" else not _active(snap, key)
            if not seen:
                out.append(n)
        return out

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    reloads = 0
    try:
        while any(thread.is_alive() for thread in threads):
            snap = _reload(reader)
            reloads += 1
            assert not missing(snap), f"version {snap.sequence} misses changes {missing(snap)}"
            time.sleep(0.005)
    finally:
        done.set()
        for thread in threads:
            thread.join(30)
    if errors:
        raise errors[0]
    snap = _reload(reader)
    assert not missing(snap) and len(numbered) == writers * each
    return {
        "changes": len(numbered),
        "reloads": reloads,
        "full_loads": reader.loader.full_loads,
        "final_version": snap.sequence,
        "highest_number": max(numbered),
    }
