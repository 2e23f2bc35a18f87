"""The reader side of the change sequence: a process re-reads only what the changes after its
snapshot name, and ends where a fresh full load would ("a change costs what changed").

A second ``RevocationCache`` stands for another process; ``reader.loader`` counts its full loads,
so every test also proves the incremental path was the one taken.
"""

from __future__ import annotations

import datetime as dt
import random
import time

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from drf_m2m_auth import changes, querysets, revocation
from drf_m2m_auth.ids import jti_digest
from drf_m2m_auth.models import Client, DeletedClient, ResourceGrant, RevocationChange, RevocationState, RevokedToken
from drf_m2m_auth.testing import FakeClock

from .revocation_support import reason_of, token

pytestmark = pytest.mark.django_db

OTHER = "https://other-issuer.example/"


def issuer() -> str:
    return revocation.only_issuer()


@pytest.fixture
def reader():
    """Another process, loaded once: from here on it must follow every change incrementally."""
    other = revocation.build(clock=FakeClock())
    other.sync(wait=True)
    assert other.loader.full_loads == 1
    return other


def follow(reader):
    """What the other process does when the generation moves: read the database now."""
    reader.mark_dirty()
    return reader.sync(wait=True)


def state(snap):
    """Everything a snapshot says, as plain values (to compare two snapshots)."""

    def client(s):
        return (s.active, s.valid_after, s.resources, s.revision, s.pk)

    return {
        "clients": {(iss, cid): client(s) for iss, states in snap.clients.items() for cid, s in states.items()},
        "every_issuer": {cid: client(s) for cid, s in snap.every_issuer.items()},
        "tombstones": {
            (iss, cid): (s.active, s.valid_after)
            for iss, states in snap.tombstones.items()
            for cid, s in states.items()
        },
        "denied": dict(snap.denied),
        "by_pk": {pk: (s.issuer, s.client_id) for pk, s in snap.by_pk.items()},
        "sequence": snap.sequence,
    }


def fresh_state():
    other = revocation.build(clock=FakeClock())
    return state(other.sync(wait=True))


def sequence():
    return RevocationState.objects.get(pk=1).sequence


# --- each kind of change -------------------------------------------------------------------------


def test_deactivate_and_revoke_tokens_reach_the_reader_with_a_few_queries(reader):
    a = Client.objects.create(client_id="svc-a", name="A")
    follow(reader)
    assert reason_of(token(), reader) is None
    before = reader.snapshot.sequence
    a.deactivate()
    with CaptureQueriesContext(connection) as queries:
        snap = follow(reader)
    assert snap.sequence == sequence() == before + 1
    # the sequence, the changes after ours, the sequence again, that client, its grants, its tombstone
    assert len(queries) == 6, [q["sql"] for q in queries.captured_queries]
    assert "drf_m2m_auth_client" in queries.captured_queries[3]["sql"]
    assert "svc-a" in str(queries.captured_queries[3]["sql"])
    assert reason_of(token(), reader) == "client_inactive"
    a.activate()
    a.revoke_tokens(timezone.now())
    follow(reader)
    assert reason_of(token(iat=time.time() - 60), reader) == "token_revoked"
    assert reason_of(token(iat=time.time() + 1), reader) is None
    assert reader.loader.full_loads == 1 and reader.loader.incremental_loads >= 3


def test_nothing_changed_costs_one_query(reader):
    follow(reader)
    with CaptureQueriesContext(connection) as queries:
        follow(reader)
    assert len(queries) == 1


def test_delete_with_tombstone_and_register_again(reader):
    a = Client.objects.create(client_id="svc-a", name="A", is_active=False)
    follow(reader)
    a.delete()  # deactivated: leaves a tombstone
    snap = follow(reader)
    assert "svc-a" not in snap.clients.get(issuer(), {})
    assert snap.tombstones[issuer()]["svc-a"].active is False
    assert reason_of(token(), reader) == "client_inactive"  # deleting never widens access
    Client.objects.create(client_id="svc-a", name="A again")  # consumes the tombstone, keeps its cut-off
    snap = follow(reader)
    assert "svc-a" not in snap.tombstones.get(issuer(), {})
    assert reason_of(token(iat=time.time() - 60), reader) == "token_revoked"
    assert reason_of(token(iat=time.time() + 5), reader) is None
    b = Client.objects.create(client_id="svc-b", name="B")
    follow(reader)
    b.delete()  # active, never revoked: no tombstone, simply unregistered
    snap = follow(reader)
    assert "svc-b" not in snap.clients[issuer()] and b.pk not in snap.by_pk
    assert not DeletedClient.objects.filter(client_id="svc-b").exists()
    assert reader.loader.full_loads == 1
    assert state(snap) == fresh_state()


def test_grants_for_this_api_only(reader):
    a = Client.objects.create(client_id="svc-a", name="A")
    grant = ResourceGrant.objects.create(client=a, resource="orders")
    follow(reader)
    assert reader.resources_for(issuer(), "svc-a") == {"orders"}
    ResourceGrant.objects.create(client=a, api="https://billing.example/", resource="invoices")
    before = reader.snapshot.sequence
    snap = follow(reader)
    assert snap.sequence == before + 1  # numbered and applied: it just grants nothing here
    assert reader.resources_for(issuer(), "svc-a") == {"orders"}
    grant.delete()
    follow(reader)
    assert reader.resources_for(issuer(), "svc-a") == frozenset()
    assert reader.loader.full_loads == 1
    assert state(reader.snapshot) == fresh_state()


def test_identical_grant_sets_are_shared(reader):
    for name in ("svc-a", "svc-b"):
        client = Client.objects.create(client_id=name, name=name)
        for resource in ("orders", "billing"):
            ResourceGrant.objects.create(client=client, resource=resource)
    snap = follow(reader)
    assert snap.clients[issuer()]["svc-a"].resources is snap.clients[issuer()]["svc-b"].resources


def test_a_renamed_client_leaves_its_old_id(reader):
    """A save that changes the client id (or issuer) is numbered under the new key only: the reader
    finds the row's old place by its pk, and drops it."""
    a = Client.objects.create(client_id="svc-a", name="A")
    follow(reader)
    a.client_id = "svc-renamed"
    a.save()
    follow(reader)
    assert reason_of(token("svc-renamed"), reader) is None
    assert "svc-a" not in reader.snapshot.clients[issuer()]
    a.issuer = OTHER
    a.save()
    follow(reader)
    assert "svc-renamed" not in reader.snapshot.clients[issuer()]
    assert reason_of(token("svc-renamed", issuer=OTHER), reader) is None
    assert reader.loader.full_loads == 1
    assert state(reader.snapshot) == fresh_state()


def test_jti_revoke_expire_and_purge(reader):
    exp = timezone.now() + dt.timedelta(minutes=5)
    RevokedToken.objects.revoke("j1", exp)
    RevokedToken.objects.revoke("j2", exp, issuer=None)  # every issuer
    follow(reader)
    assert reason_of(token(jti="j1"), reader) == "jti_revoked"
    assert reason_of(token(jti="j1", issuer=OTHER), reader) is None
    assert reason_of(token(jti="j2", issuer=OTHER), reader) == "jti_revoked"
    RevokedToken.objects.denying("j1").update(exp=timezone.now() - dt.timedelta(seconds=1))
    follow(reader)
    assert jti_digest("j1") not in reader.snapshot.denied
    assert RevokedToken.objects.purge_expired() == 1
    follow(reader)
    assert reason_of(token(jti="j1"), reader) is None and reason_of(token(jti="j2"), reader) == "jti_revoked"
    assert reader.loader.full_loads == 1
    assert state(reader.snapshot) == fresh_state()


def test_a_bulk_change_rereads_the_section(reader, monkeypatch):
    monkeypatch.setattr(changes, "MAX_KEYS", 3)
    monkeypatch.setattr(querysets, "MAX_KEYS", 3)
    Client.objects.bulk_create([Client(client_id=f"svc-{i}", name=str(i)) for i in range(6)])
    assert RevocationChange.objects.filter(sequence=sequence()).get().kind == "clients"
    follow(reader)
    assert len(reader.snapshot.clients[issuer()]) == 6
    Client.objects.filter(client_id__in=["svc-0", "svc-1"]).deactivate()  # two keys: per client
    assert RevocationChange.objects.filter(sequence=sequence()).count() == 2
    Client.objects.all().deactivate()  # six: one "clients" change
    exp = timezone.now() + dt.timedelta(minutes=5)
    RevokedToken.objects.bulk_create(
        [RevokedToken(issuer=issuer(), jti_sha256=jti_digest(f"b{i}"), exp=exp) for i in range(5)]
    )
    follow(reader)
    assert all(reason_of(token(f"svc-{i}"), reader) == "client_inactive" for i in range(6))
    assert reason_of(token("svc-x", jti="b4"), reader) == "jti_revoked"
    assert all(jti_digest(f"b{i}") in reader.snapshot.denied for i in range(5))
    assert reader.loader.full_loads == 1
    assert state(reader.snapshot) == fresh_state()


def test_history_pruned_past_the_snapshot_loads_everything(reader):
    Client.objects.create(client_id="svc-a", name="A")
    follow(reader)
    Client.objects.filter(client_id="svc-a").deactivate()
    # What changes.write_changes does once the rows are older than CHANGE_RETENTION.
    RevocationChange.objects.all().delete()
    RevocationState.objects.filter(pk=1).update(pruned_through=sequence())
    follow(reader)
    assert reader.loader.full_loads == 2
    assert reason_of(token(), reader) == "client_inactive"


def test_a_sequence_that_went_backwards_loads_everything(reader):
    Client.objects.create(client_id="svc-a", name="A")
    follow(reader)
    RevocationState.objects.filter(pk=1).update(sequence=F("sequence") - 1)  # a restored backup, say
    follow(reader)
    assert reader.loader.full_loads == 2


def test_a_loader_without_an_api_reads_every_apis_grants(reader):
    """A loader without an API of its own (None) reads every API's grants; the service's reads its own."""
    a = Client.objects.create(client_id="svc-a", name="A")
    ResourceGrant.objects.create(client=a, api="https://billing.example/", resource="invoices")
    follow(reader)
    assert reader.resources_for(issuer(), "svc-a") == frozenset()
    every_api = revocation.build(clock=FakeClock(), loader=type(reader.loader)(api=None))
    assert every_api.resources_for(issuer(), "svc-a") == {"invoices"}


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_number_read_inside_its_transaction_is_not_trusted():
    """This process reads its own uncommitted change (it is inside the writer's transaction); the
    transaction rolls back, and the next committed change gets the same number. The snapshot read
    inside is provisional: the next read outside loads everything, so the rollback is not kept."""
    clock = FakeClock()
    revocation.use_factory(lambda: revocation.build(clock=clock))
    try:
        Client.objects.create(client_id="svc-a", name="A", is_active=False)
        assert reason_of(token(), revocation.process_cache()) == "client_inactive"
        with pytest.raises(RuntimeError), transaction.atomic():
            Client.objects.filter(client_id="svc-a").activate()
            assert reason_of(token(), revocation.process_cache()) is None  # its own change, uncommitted
            rolled_back = sequence()
            raise RuntimeError("roll back")
        RevokedToken.objects.revoke("unrelated", timezone.now() + dt.timedelta(minutes=5))
        assert sequence() == rolled_back  # the same number, another change
        clock.advance(1.0)
        assert reason_of(token(), revocation.process_cache()) == "client_inactive"
    finally:
        revocation.use_factory(None)


# --- a random series: incremental always equals a fresh full load ---------------------------------


def test_random_series_matches_a_full_load(reader, monkeypatch):
    monkeypatch.setattr(changes, "MAX_KEYS", 4)  # bulk operations cross it now and then
    monkeypatch.setattr(querysets, "MAX_KEYS", 4)
    rng = random.Random(20261129)
    ids = [f"svc-{i}" for i in range(6)]
    issuers = [issuer(), OTHER]
    apis = [None, "https://billing.example/"]
    exp = timezone.now() + dt.timedelta(minutes=10)

    def some_client():
        return Client.objects.filter(client_id=rng.choice(ids), issuer=rng.choice(issuers)).first()

    def op_create():
        iss, cid = rng.choice(issuers), rng.choice(ids)
        if not Client.objects.filter(issuer=iss, client_id=cid).exists():
            Client.objects.create(issuer=iss, client_id=cid, name=cid, is_active=rng.random() < 0.8)

    def op_toggle():
        if (c := some_client()) is not None:
            c.deactivate() if c.is_active else c.activate()

    def op_revoke_tokens():
        if (c := some_client()) is not None:
            c.revoke_tokens(timezone.now() - dt.timedelta(seconds=rng.randint(0, 100)))

    def op_delete():
        if (c := some_client()) is not None:
            c.delete()

    def op_grant():
        if (c := some_client()) is not None:
            api = rng.choice(apis)
            resource = rng.choice(["orders", "billing", "reports"])
            found = c.grants.filter(resource=resource, api=api or revocation.m2m_settings.API)
            if found.exists():
                found.delete()
            else:
                ResourceGrant.objects.create(client=c, api=api or "", resource=resource)

    def op_bulk():
        subset = rng.sample(ids, rng.randint(1, 6))
        Client.objects.filter(client_id__in=subset).update(is_active=rng.random() < 0.5)

    def op_jti():
        jti = f"j{rng.randint(0, 8)}"
        RevokedToken.objects.revoke(jti, exp, issuer=rng.choice([*issuers, None]))

    def op_unrevoke():
        RevokedToken.objects.denying(f"j{rng.randint(0, 8)}").delete()

    def op_tombstone_gone():
        DeletedClient.objects.filter(client_id=rng.choice(ids)).delete()

    operations = [
        op_create,
        op_create,
        op_toggle,
        op_revoke_tokens,
        op_delete,
        op_grant,
        op_grant,
        op_bulk,
        op_jti,
        op_unrevoke,
        op_tombstone_gone,
    ]
    for step in range(120):
        operation = rng.choice(operations)
        operation()
        if rng.random() < 0.7:  # sometimes two or more changes between two reads
            follow(reader)
            assert state(reader.snapshot) == fresh_state(), (step, operation.__name__)
    follow(reader)
    assert state(reader.snapshot) == fresh_state()
    assert reader.loader.full_loads == 1 and reader.loader.incremental_loads > 40
