"""DPoP replay protection whatever the shared cache does, and the process replay store.

A cache that stores nothing (DummyCache) and an unreachable cache both fall back to the in-process
store, so a replay to the same worker is still refused; DPOP_REPLAY_CACHE_DOWN="reject" answers
503 + Retry-After instead while the cache is unreachable. The in-process store never evicts an
unexpired proof: full, it refuses (503).
"""

from __future__ import annotations

import pytest
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.test import APIClient

from drf_m2m_auth.dpop import DPoPVerifier, MemoryReplayCache
from drf_m2m_auth.dpop_key import DPoPKey
from drf_m2m_auth.errors import InvalidDPoPProof, ReplayCheckUnavailable
from drf_m2m_auth.shared import SharedCache
from drf_m2m_auth.testing import FakeClock

from .client_support.broken_cache import BrokenCache

URL = "https://api.example.com/orders/"
TOKEN = "header.payload.signature"


@pytest.fixture
def key():
    return DPoPKey()


def verify(verifier, key, value):
    return verifier.verify(value, method="GET", url=URL, access_token=TOKEN, jkt=key.thumbprint)


def test_a_cache_that_stores_nothing_still_refuses_a_replay(key):
    verifier = DPoPVerifier(replay_cache=SharedCache(DummyCache("dummy", {})))
    proof = key.proof("GET", URL, access_token=TOKEN)
    verify(verifier, key, proof)
    with pytest.raises(InvalidDPoPProof) as info:
        verify(verifier, key, proof)
    assert info.value.reason == "dpop_replayed"


@pytest.fixture
def broken():
    BrokenCache.down = True
    yield SharedCache(BrokenCache("broken-dpop", {}), alias="broken-dpop")
    BrokenCache.down = True


def test_an_unreachable_cache_falls_back_to_the_process_store(key, broken):
    verifier = DPoPVerifier(replay_cache=broken)  # cache_down="local" is the default
    proof = key.proof("GET", URL, access_token=TOKEN)
    verify(verifier, key, proof)
    with pytest.raises(InvalidDPoPProof) as info:
        verify(verifier, key, proof)  # the same worker still refuses the replay
    assert info.value.reason == "dpop_replayed"
    verify(verifier, key, key.proof("GET", URL, access_token=TOKEN))  # a fresh proof is fine


def test_an_unreachable_cache_with_reject_is_a_503(key, broken):
    verifier = DPoPVerifier(replay_cache=broken, cache_down="reject")
    with pytest.raises(ReplayCheckUnavailable) as info:
        verify(verifier, key, key.proof("GET", URL, access_token=TOKEN))
    assert (info.value.status_code, info.value.retry_after, info.value.reason) == (503, 5, "dpop_replay_unavailable")
    BrokenCache.down = False  # the cache is back: proofs are checked through it again
    proof = key.proof("GET", URL, access_token=TOKEN)
    verify(verifier, key, proof)
    with pytest.raises(InvalidDPoPProof):
        verify(verifier, key, proof)


def test_the_shared_cache_is_the_judge_while_it_answers(key):
    shared = SharedCache(LocMemCache("replay-shared", {}))
    one, two = DPoPVerifier(replay_cache=shared), DPoPVerifier(replay_cache=shared)  # two workers
    proof = key.proof("GET", URL, access_token=TOKEN)
    verify(one, key, proof)
    with pytest.raises(InvalidDPoPProof):
        verify(two, key, proof)
    assert shared.key("dpop-jti", key.thumbprint, "x").startswith("drf_m2m_auth:dpop-jti:")


def test_cache_down_mode_is_validated():
    with pytest.raises(ValueError, match="cache_down"):
        DPoPVerifier(cache_down="Reject")


def test_the_process_store_refuses_when_full_and_never_evicts_a_live_entry():
    clock = FakeClock(1000.0)
    store = MemoryReplayCache(max_entries=3, clock=clock)
    assert [store.add(k, 1, 60) for k in "abc"] == [True, True, True]
    assert store.add("d", 1, 60) is None  # full of live entries: refuse, evict nothing
    assert store.add("a", 1, 60) is False  # the victim's jti is still a replay
    clock.now += 30
    assert store.retry_after() == 30
    clock.now += 30  # a, b and c have expired: room again
    assert store.add("d", 1, 60) is True and store.add("a", 1, 60) is True
    assert len(store) == 2


def test_a_full_process_store_is_a_503_not_an_eviction(key):
    verifier = DPoPVerifier()
    verifier.local_replays = MemoryReplayCache(max_entries=2)
    victim = key.proof("GET", URL, access_token=TOKEN)
    verify(verifier, key, victim)
    verify(verifier, key, key.proof("GET", URL, access_token=TOKEN))
    with pytest.raises(ReplayCheckUnavailable) as info:
        verify(verifier, key, key.proof("GET", URL, access_token=TOKEN))
    assert info.value.status_code == 503 and info.value.retry_after >= 1
    with pytest.raises(InvalidDPoPProof):
        verify(verifier, key, victim)


def test_the_process_store_is_sized_from_the_proof_window():
    verifier = DPoPVerifier(max_age=60, clock_skew=5, max_proofs_per_second=100)
    assert verifier.replay_ttl == 71
    assert verifier.local_replays.max_entries == 100 * 71


@pytest.mark.django_db
@pytest.mark.urls("tests.urls")
@pytest.mark.parametrize("mode, second", [("local", 401), ("reject", 503)])
def test_through_a_request_while_the_cache_is_unreachable(m2m_issuer, settings, key, mode, second):
    settings.CACHES = {
        **settings.CACHES,
        "broken": {"BACKEND": "tests.client_support.broken_cache.BrokenCache", "LOCATION": "http"},
    }
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "CACHE": "broken", "DPOP_REPLAY_CACHE_DOWN": mode}
    BrokenCache.down = False
    token = m2m_issuer.token(sub="svc-a@clients", cnf={"jkt": key.thumbprint})
    api = APIClient()

    def send(proof):
        return api.get("/echo/", HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=proof)

    assert send(key.proof("GET", "http://testserver/echo/", access_token=token)).status_code == 200
    BrokenCache.down = True
    try:
        proof = key.proof("GET", "http://testserver/echo/", access_token=token)
        first = send(proof)
        if mode == "local":
            assert first.status_code == 200, first.content
            replay = send(proof)
            assert replay.status_code == 401 and "used before" in replay.headers["WWW-Authenticate"]
        else:
            assert first.status_code == second, first.content
            assert first.headers["Retry-After"] == "5"
    finally:
        BrokenCache.down = True


@pytest.mark.django_db
@pytest.mark.urls("tests.urls")
def test_replay_claims_are_digest_keys_under_cache_key_prefix(m2m_issuer, settings, key):
    from django.core.cache import caches

    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "CACHE_KEY_PREFIX": "staging"}
    token = m2m_issuer.token(sub="svc-a@clients", cnf={"jkt": key.thumbprint})
    proof = key.proof("GET", "http://testserver/echo/", access_token=token)
    response = APIClient().get("/echo/", HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=proof)
    assert response.status_code == 200, response.content
    claims = [k for k in caches["default"]._cache if ":dpop-jti:" in k]
    assert len(claims) == 1 and claims[0].split(":")[2:4] == ["staging", "dpop-jti"]
    assert key.thumbprint not in claims[0]  # a digest of the exact (key, jti), nothing readable
