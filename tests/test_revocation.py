"""revocation.py: answers from process memory, reloads only what changed, never loses a change.

"Another process" is simulated by a second, independent copy of the module (its own memory,
the same database and cache); the real multi-process runs are in tests/realservices/.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.db import DatabaseError, InterfaceError, connection, transaction
from django.utils import timezone

from drf_m2m_auth import revocation
from drf_m2m_auth.errors import InvalidToken, RevocationUnavailable
from drf_m2m_auth.ids import jti_digest
from drf_m2m_auth.models import Client, ResourceGrant, RevocationState, RevokedToken
from drf_m2m_auth.testing import FakeClock

from .revocation_support import reason_of, token

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock():
    """This process's RevocationCache runs on a fake clock (also when a setting change rebuilds it)."""
    fake = FakeClock(1000.0)
    revocation.use_factory(lambda: revocation.build(clock=fake))
    yield fake
    revocation.use_factory(None)


@pytest.fixture
def other_process(clock):
    """A second process: its own RevocationCache (own memory), same database and cache, same clock.
    Only this process's instance hears the models' signal, as only the writer's process would."""
    return revocation.build(clock=clock)


def generation_key():
    return revocation.process_cache().generation_key


def snapshot():
    return revocation.process_cache().snapshot


def client_with(client_id="svc-a", *resources, **fields):
    client = Client.objects.create(client_id=client_id, name=client_id.upper(), **fields)
    for resource in resources:
        ResourceGrant.objects.create(client=client, resource=resource)
    return client


def commit_elsewhere(sql, params=(), changes=(("clients", "", ""), ("tokens", "", ""))):
    """A change made by another process: straight SQL, its number, a new generation in the cache."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    number_whole_sections(changes)
    caches["default"].set(generation_key(), revocation.new_generation(), None)


def number_whole_sections(changes=(("clients", "", ""), ("tokens", "", ""))):
    """What a writer's stamp() leaves in the database, without its signal: the next number, and
    what to re-read (by default both sections: raw SQL names no client or jti)."""
    from drf_m2m_auth.changes import allocate, write_changes
    from drf_m2m_auth.models import RevocationChange

    number = allocate(RevocationState, "default", {})
    write_changes(RevocationChange, RevocationState, "default", number, list(changes))


# --- the answers ---------------------------------------------------------------------------------


def test_unregistered_client_is_accepted_by_default_and_has_no_resources():
    assert reason_of(token("nobody")) is None
    assert revocation.resources_for(revocation.only_issuer(), "nobody") is None


def test_unregistered_client_rejected_when_policy_is_deny(settings):
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "UNREGISTERED_CLIENTS": "deny"}
    assert reason_of(token("nobody")) == "client_unregistered"
    client_with("svc-a")
    assert reason_of(token("svc-a")) is None


def test_bad_policy_value_is_a_configuration_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "UNREGISTERED_CLIENTS": "maybe"}
    with pytest.raises(ImproperlyConfigured, match="UNREGISTERED_CLIENTS"):
        revocation.check(token())


def test_registered_client_resources():
    client_with("svc-a", "orders", "invoices")
    assert revocation.resources_for(revocation.only_issuer(), "svc-a") == frozenset({"orders", "invoices"})
    client_with("svc-b")
    assert revocation.resources_for(revocation.only_issuer(), "svc-b") == frozenset()


def test_inactive_client_is_rejected():
    client_with("svc-a", is_active=False)
    assert reason_of(token()) == "client_inactive"


def test_tokens_issued_before_tokens_valid_after_are_rejected():
    cut = timezone.now()
    client_with("svc-a", tokens_valid_after=cut)
    assert reason_of(token(iat=cut.timestamp() - 1)) == "token_revoked"
    assert reason_of(token(iat=cut.timestamp() - 0.001)) == "token_revoked"
    assert reason_of(token(iat=cut.timestamp())) is None
    assert reason_of(token(iat=cut.timestamp() + 5)) is None


def test_denied_jti_is_rejected_and_only_that_one():
    RevokedToken.objects.revoke("leaked-1", timezone.now() + dt.timedelta(hours=1))
    assert reason_of(token(jti="leaked-1")) == "jti_revoked"
    assert reason_of(token(jti="leaked-2")) is None
    assert reason_of(token()) is None  # no jti at all


def test_expired_deny_list_entries_are_not_loaded_and_are_purged():
    now = timezone.now()
    RevokedToken.objects.create(jti="old", exp=now - dt.timedelta(seconds=1))
    RevokedToken.objects.create(jti="live", exp=now + dt.timedelta(hours=1))
    revocation.check(token())
    assert snapshot().jtis == {None: frozenset({jti_digest("live")})}  # no issuer given: denied at every issuer
    assert RevokedToken.objects.purge_expired() == 1
    assert list(RevokedToken.objects.values_list("jti_display", flat=True)) == ["live"]


def test_error_carries_the_claim_for_logs():
    client_with("svc-a", tokens_valid_after=timezone.now())
    with pytest.raises(InvalidToken) as info:
        revocation.check(token(iat=0))
    assert (info.value.reason, info.value.claim) == ("token_revoked", "iat")


# --- the request path costs nothing ----------------------------------------------------------------


class CountingCache(LocMemCache):
    calls = 0

    def get(self, *args, **kwargs):
        type(self).calls += 1
        return super().get(*args, **kwargs)


@pytest.mark.django_db(transaction=True)  # committed writes: nothing is pending in this process
def test_steady_state_makes_no_query_and_no_cache_call(clock, django_assert_num_queries, settings):
    settings.CACHES = {"default": {"BACKEND": f"{__name__}.CountingCache", "LOCATION": "counting"}}
    client_with("svc-a", "orders", tokens_valid_after=timezone.now() - dt.timedelta(hours=1))
    RevokedToken.objects.revoke("x", timezone.now() + dt.timedelta(hours=1))
    revocation.check(token())  # the first check loads
    CountingCache.calls = 0
    with django_assert_num_queries(0):
        for _ in range(1000):
            revocation.check(token(jti="y"))
            revocation.resources_for(revocation.only_issuer(), "svc-a")
        clock.advance(0.99)
        revocation.check(token())
    assert CountingCache.calls == 0
    clock.advance(0.02)
    with django_assert_num_queries(0):  # interval passed: one cache read, generation unchanged
        revocation.check(token())
    assert CountingCache.calls == 1


@pytest.mark.django_db(transaction=True)  # committed: this process is not inside its own change
def test_generation_change_reloads_only_the_changed_client(clock, django_assert_num_queries):
    for i in range(60):
        client_with(f"svc-{i}", "orders")
    revocation.check(token("svc-0"))
    before = dict(snapshot().clients[revocation.only_issuer()])
    commit_elsewhere(
        "UPDATE drf_m2m_auth_client SET is_active = %s, revision = revision + 1 WHERE client_id = %s",
        [False, "svc-7"],
        changes=[("client", revocation.only_issuer(), "svc-7")],
    )
    assert reason_of(token("svc-7")) is None  # not yet: the interval has not passed
    clock.advance(1.01)
    # the sequence, the changes after ours, the sequence again (pruned meanwhile?), that one client,
    # its grants, its tombstone: nothing else
    with django_assert_num_queries(6):
        assert reason_of(token("svc-7")) == "client_inactive"
    after = snapshot().clients[revocation.only_issuer()]
    assert after["svc-7"] is not before["svc-7"]
    assert all(after[k] is before[k] for k in before if k != "svc-7")


@pytest.mark.parametrize(
    "jti", ["a b", "tab\tand\nnewline", "é-ü-日本", "x" * 300, "\u202eevil", "lone-\ud800-surrogate"]
)
def test_any_jti_can_be_revoked(jti):
    """RFC 7519 4.1.7: a jti is any string. Before: 'malformed' for all of these, so unrevocable."""
    RevokedToken.objects.revoke(jti, timezone.now() + dt.timedelta(hours=1), reason="leaked")
    assert reason_of(token(jti=jti)) == "jti_revoked"
    assert reason_of(token(jti=jti + "x")) is None
    entry = RevokedToken.objects.denying(jti).get()
    assert len(entry.jti_sha256) == 64 and len(entry.jti_display) <= 100
    assert "\n" not in entry.jti_display and "\u202e" not in entry.jti_display


# --- deleting a client never widens access -----------------------------------------


@pytest.mark.parametrize("how", ["instance", "queryset"])
def test_deleting_a_deactivated_client_keeps_its_tokens_rejected(clock, other_process, how):
    client = client_with("svc-a", "orders", is_active=False)
    assert reason_of(token()) == "client_inactive"
    client.delete() if how == "instance" else Client.objects.filter(pk=client.pk).delete()
    assert reason_of(token()) == "client_inactive"
    assert reason_of(token(iat=time.time() + 3600)) == "client_inactive"  # not even a newer token
    assert reason_of(token(), other_process) == "client_inactive"
    assert revocation.resources_for(revocation.only_issuer(), "svc-a") is None  # no grant survives


def test_deleting_a_revoked_client_keeps_its_old_tokens_rejected(clock):
    cut = timezone.now()
    client_with("svc-a", "orders", tokens_valid_after=cut)
    old, new = token(iat=cut.timestamp() - 10), token(iat=cut.timestamp() + 10)
    assert (reason_of(old), reason_of(new)) == ("token_revoked", None)
    Client.objects.filter(client_id="svc-a").delete()
    assert (reason_of(old), reason_of(new)) == ("token_revoked", None)  # new: unregistered, allowed


def test_deleted_revoked_client_with_deny_policy_rejects_every_token(clock, settings):
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "UNREGISTERED_CLIENTS": "deny"}
    cut = timezone.now()
    client_with("svc-a", tokens_valid_after=cut).delete()
    assert reason_of(token(iat=cut.timestamp() - 10)) == "token_revoked"
    assert reason_of(token(iat=cut.timestamp() + 10)) == "client_unregistered"


def test_registering_a_deleted_client_again_keeps_the_cut_off(clock):
    from drf_m2m_auth.models import DeletedClient

    client_with("svc-a", is_active=False).delete()
    assert DeletedClient.objects.filter(client_id="svc-a").exists()
    before = token(iat=time.time() - 5)
    client_with("svc-a", "orders")  # registered again, active
    assert not DeletedClient.objects.exists()
    assert reason_of(before) == "token_revoked"  # issued before the deletion: stays rejected
    assert reason_of(token(iat=time.time() + 1)) is None


def test_deleting_an_active_client_leaves_no_tombstone(clock):
    from drf_m2m_auth.models import DeletedClient

    client_with("svc-a", "orders").delete()
    assert not DeletedClient.objects.exists()
    assert reason_of(token()) is None and revocation.resources_for(revocation.only_issuer(), "svc-a") is None


def test_deleted_client_becomes_unregistered(clock):
    client_with("svc-a", "orders")
    assert revocation.resources_for(revocation.only_issuer(), "svc-a") == {"orders"}
    Client.objects.filter(client_id="svc-a").delete()
    assert revocation.resources_for(revocation.only_issuer(), "svc-a") is None


# --- writes: every path bumps, in-process visibility is immediate --------------------------------


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c.deactivate(),
        lambda c: Client.objects.filter(pk=c.pk).deactivate(),
        lambda c: Client.objects.filter(pk=c.pk).update(is_active=False),
        lambda c: Client.objects.bulk_update(
            [Client(pk=c.pk, client_id=c.client_id, name="x", is_active=False, revision=0)], ["is_active"]
        ),
    ],
    ids=["save", "queryset-method", "update", "bulk_update"],
)
def test_every_write_path_is_seen_at_once_in_this_process(clock, change):
    client = client_with("svc-a")
    assert reason_of(token()) is None
    change(client)
    assert reason_of(token()) == "client_inactive"


@pytest.mark.parametrize(
    "change",
    [
        lambda c: ResourceGrant.objects.create(client=c, resource="payroll"),
        lambda c: ResourceGrant.objects.bulk_create([ResourceGrant(client=c, resource="payroll")]),
        lambda c: ResourceGrant.objects.filter(client=c).update(resource="payroll"),
        lambda c: (
            ResourceGrant.objects.filter(client=c).delete(),
            ResourceGrant.objects.create(client=c, resource="payroll"),
        ),
    ],
    ids=["create", "bulk_create", "update", "delete+create"],
)
def test_grant_changes_are_seen_at_once(clock, change):
    client = client_with("svc-a", "orders")
    assert revocation.resources_for(revocation.only_issuer(), "svc-a") == {"orders"}
    change(client)
    assert "payroll" in revocation.resources_for(revocation.only_issuer(), "svc-a")


def test_generation_moves_only_when_the_transaction_commits(django_capture_on_commit_callbacks):
    cache = caches["default"]
    before = cache.get(generation_key())
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client = client_with("svc-a")
        client.deactivate()
        client.revoke_tokens()
        ResourceGrant.objects.create(client=client, resource="orders")
    assert cache.get(generation_key()) == before
    assert len(callbacks) == 1  # one announcement per transaction, however many writes
    callbacks[0]()
    assert cache.get(generation_key()) not in (None, before)


@pytest.mark.django_db(transaction=True)
def test_other_process_sees_a_change_within_one_interval(clock, other_process):
    client = client_with("svc-a")
    assert reason_of(token(), other_process) is None
    clock.advance(1.0)
    assert reason_of(token(), other_process) is None  # settled on the cache's generation
    client.revoke_tokens()
    assert reason_of(token(iat=time.time() - 5)) == "token_revoked"  # this process: at once
    assert reason_of(token(iat=time.time() - 5), other_process) is None  # other: not before its interval
    clock.advance(1.0)
    assert reason_of(token(iat=time.time() - 5), other_process) == "token_revoked"


@pytest.mark.django_db(transaction=True)
def test_deny_list_change_does_not_reload_clients(clock, other_process, django_assert_num_queries):
    client_with("svc-a")
    other_process.check(token())
    clock.advance(1.0)
    other_process.check(token())
    clients_before = other_process.snapshot.clients
    RevokedToken.objects.revoke("j1", timezone.now() + dt.timedelta(minutes=5))
    clock.advance(1.0)
    # the sequence, the changes after ours, the sequence again, that one digest's entries
    with django_assert_num_queries(4):
        assert reason_of(token(jti="j1"), other_process) == "jti_revoked"
    assert other_process.snapshot.clients is clients_before


@pytest.mark.django_db(transaction=True)
def test_rolled_back_change_does_not_stick(clock):
    client_with("svc-a")
    assert reason_of(token()) is None
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            Client.objects.filter(client_id="svc-a").deactivate()
            assert reason_of(token()) == "client_inactive"  # this transaction sees its own change
            raise RuntimeError("roll back")
    clock.advance(1.0)
    assert reason_of(token()) is None


# --- the cache goes away: nothing is lost ----------------------------------------------------------


class FlakyCache(LocMemCache):
    down = False

    def _guard(self):
        if type(self).down:
            raise ConnectionError("cache is down")

    def get(self, *a, **kw):
        self._guard()
        return super().get(*a, **kw)

    def set(self, *a, **kw):
        self._guard()
        return super().set(*a, **kw)

    def add(self, *a, **kw):
        self._guard()
        return super().add(*a, **kw)


@pytest.fixture
def flaky_cache(settings):
    FlakyCache.down = False
    settings.CACHES = {"default": {"BACKEND": f"{__name__}.FlakyCache", "LOCATION": "flaky"}}
    yield FlakyCache
    FlakyCache.down = False


@pytest.mark.django_db(transaction=True)  # real commits: on_commit announcements really run
def test_change_while_cache_is_down_is_seen_here_at_once_and_elsewhere_via_the_database(
    clock, flaky_cache, other_process, caplog
):
    client_with("svc-a")
    assert reason_of(token(), other_process) is None
    flaky_cache.down = True
    Client.objects.filter(client_id="svc-a").deactivate()
    assert revocation.publish_pending()
    assert reason_of(token()) == "client_inactive"
    clock.advance(1.0)
    assert reason_of(token(), other_process) == "client_inactive"  # fell back to the database stamps
    assert "cannot read the cache" in caplog.text
    flaky_cache.down = False
    clock.advance(1.0)
    revocation.check(token("x"))  # the writer's next check republishes
    assert not revocation.publish_pending()


@pytest.mark.django_db(transaction=True)
def test_change_while_cache_is_down_by_a_writer_that_then_exits(clock, flaky_cache, other_process):
    """The other process polls the database while the cache is down, and again when it is back."""
    client_with("svc-a")
    assert reason_of(token(), other_process) is None
    flaky_cache.down = True
    clock.advance(1.0)
    assert reason_of(token(), other_process) is None  # notices the outage, still fine
    Client.objects.filter(client_id="svc-a").deactivate()
    revocation.reset()  # the writer (a management command, say) is gone; nobody will republish
    flaky_cache.down = False
    clock.advance(1.0)
    assert reason_of(token(), other_process) == "client_inactive"


def test_change_never_announced_is_found_by_the_database_check_interval(clock, settings):
    """A writer could not reach the cache (a partition) and died: the periodic database check bounds it."""
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "REVOCATION_DB_CHECK_INTERVAL": 30}
    other_process = revocation.build(clock=clock)
    client_with("svc-a")
    assert reason_of(token(), other_process) is None
    clock.advance(1.0)
    assert reason_of(token(), other_process) is None  # settled: has seen the cache's generation
    with connection.cursor() as cursor:
        cursor.execute("UPDATE drf_m2m_auth_client SET is_active = %s, revision = revision + 1", [False])
    number_whole_sections()
    clock.advance(29)
    assert reason_of(token(), other_process) is None
    clock.advance(1.5)
    assert reason_of(token(), other_process) == "client_inactive"


def test_flushed_cache_generation_is_recreated(clock, other_process):
    cache = caches["default"]
    client_with("svc-a")
    other_process.check(token())
    cache.clear()
    clock.advance(1.0)
    other_process.check(token())
    assert cache.get(generation_key()) is not None


# --- the database goes away -------------------------------------------------------------------------


class BrokenLoader:
    def __init__(self, error=None):
        self.error = error or DatabaseError("connection refused")

    def reload(self, new):
        raise self.error


def test_database_down_before_first_load_is_a_503_not_an_accept():
    cold = revocation.build(loader=BrokenLoader())
    with pytest.raises(RevocationUnavailable) as info:
        cold.check(token())
    assert info.value.reason == "revocation_unavailable"
    assert info.value.status_code == 503


def test_interface_error_before_first_load_is_a_503_not_a_500():
    """django.db.InterfaceError (psycopg's "connection already closed") is not a DatabaseError."""
    cold = revocation.build(loader=BrokenLoader(InterfaceError("connection already closed")))
    with pytest.raises(RevocationUnavailable) as info:
        cold.check(token())
    assert info.value.reason == "revocation_unavailable" and info.value.status_code == 503


@pytest.mark.skipif(connection.vendor != "postgresql", reason="closing SQLite's in-memory test database destroys it")
@pytest.mark.django_db(transaction=True)  # no test transaction on the connection we break
def test_connection_closed_under_a_cold_process_is_a_503_not_a_500():
    """On PostgreSQL (tests/realservices/test_postgres.py runs this file there): the connection is
    closed under Django and a cold process reads the database: 503. With psycopg 3 (installed
    here) a closed connection is an OperationalError, which the old ``except DatabaseError``
    already caught; psycopg2's is an InterfaceError, which only ``django.db.Error`` catches: the
    test above injects that one."""
    client_with("svc-a", is_active=False)
    cold = revocation.build()
    connection.ensure_connection()
    connection.connection.close()  # the server side went away under Django
    try:
        with pytest.raises(RevocationUnavailable) as info:
            cold.check(token())
        assert info.value.reason == "revocation_unavailable" and info.value.status_code == 503
    finally:
        connection.close()
    assert reason_of(token(), revocation.build()) == "client_inactive"  # reconnects on its own


def test_database_down_later_keeps_the_last_known_state(clock, monkeypatch, caplog):
    client_with("svc-a", is_active=False)
    assert reason_of(token()) == "client_inactive"

    revocation.process_cache().loader = BrokenLoader()
    caches["default"].set(generation_key(), 1, None)
    clock.advance(5)
    assert reason_of(token()) == "client_inactive"
    assert "cannot read the database" in caplog.text


# --- threads ----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_threads_never_see_an_empty_table_on_first_load(settings):
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "UNREGISTERED_CLIENTS": "deny"}
    client_with("svc-a")
    revocation.reset()
    results, barrier = [], threading.Barrier(8)

    def worker():
        barrier.wait()
        try:
            results.append(reason_of(token()))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [None] * 8


def test_setting_change_clears_process_memory(settings):
    client_with("svc-a")
    revocation.check(token())
    assert snapshot().loaded
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "REVOCATION_CHECK_INTERVAL": 2.0}
    assert not snapshot().loaded


@pytest.mark.django_db(transaction=True)
def test_without_a_shared_cache_processes_compare_the_database_stamps_each_interval(
    clock, settings, django_assert_num_queries
):
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "CACHE": None}
    other_process = revocation.build(clock=clock)
    client = client_with("svc-a")
    assert reason_of(token(), other_process) is None
    clock.advance(1.0)
    with django_assert_num_queries(1):  # the stamps only: nothing changed
        assert reason_of(token(), other_process) is None
    client.deactivate()
    assert not revocation.publish_pending()  # nothing to publish to, nothing pending
    assert reason_of(token()) == "client_inactive"
    clock.advance(1.0)
    assert reason_of(token(), other_process) == "client_inactive"


@pytest.mark.django_db(transaction=True)  # no outer transaction: each block below is the outermost
def test_a_test_transaction_rolled_back_leaves_nothing_behind_for_the_next_one(django_db_blocker):
    """Two TestCase-style transactions in a row, within one interval: the second sees its own data."""
    from django.test import TestCase

    def in_a_test_transaction(body):
        with django_db_blocker.unblock():
            atomic = TestCase._enter_atomics()
            try:
                return body()
            finally:
                TestCase._rollback_atomics(atomic)

    def first():
        client_with("svc-a", is_active=False)
        return reason_of(token())

    assert in_a_test_transaction(first) == "client_inactive"
    assert in_a_test_transaction(lambda: reason_of(token())) is None  # svc-a is gone: unregistered


def test_the_jti_digest_memo_is_bounded(monkeypatch):
    from drf_m2m_auth import revocation_rules

    monkeypatch.setattr(revocation_rules, "DIGEST_MEMO_SIZE", 3)
    RevokedToken.objects.revoke("j-9", timezone.now() + dt.timedelta(hours=1))
    rc = revocation.build()
    for i in range(10):
        assert reason_of(token(jti=f"j-{i}"), rc) == ("jti_revoked" if i == 9 else None)
        assert len(rc._digests) <= 3
    assert reason_of(token(jti="j-9"), rc) == "jti_revoked"  # from the memo
