"""jwks.py against a real HTTP JWKS endpoint on 127.0.0.1: discovery, refresh rules, outages, sharing."""

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.cache.backends.locmem import LocMemCache

from drf_m2m_auth.errors import InvalidToken, JWKSError, KeysUnavailable
from drf_m2m_auth.jwks import HTTPFetcher, JWKSource, check_url, parse_jwks, parse_max_age
from drf_m2m_auth.testing import FakeIssuer, JWKSServer, b64url, public_jwk
from drf_m2m_auth.tokens import TokenVerifier

AUD = "https://api.example"


class Clock:
    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now


@pytest.fixture
def server():
    srv = JWKSServer(FakeIssuer(audience=AUD))
    yield srv
    srv.stop()


def source_for(server, *, discovery=False, timeout=2.0, **kwargs):
    fetch = HTTPFetcher(timeout=timeout, max_bytes=kwargs.pop("max_bytes", 512 * 1024))
    return JWKSource(server.fake.issuer, jwks_url=None if discovery else server.jwks_url, fetch=fetch, **kwargs)


def verifier_for(source, **kwargs):
    return TokenVerifier(sources={source.issuer: source}, audiences=[AUD], **kwargs)


def test_discovery_finds_jwks_uri(server):
    source = source_for(server, discovery=True)
    verifier_for(source).verify(server.fake.token())
    assert (server.discovery_requests, server.jwks_requests) == (1, 1)
    assert source.jwks_url == server.jwks_url and source.source == "network"


def test_discovery_issuer_must_match_exactly(server):
    source = JWKSource(server.fake.issuer.rstrip("/"), fetch=HTTPFetcher())  # no trailing slash
    token = server.fake.token(iss=server.fake.issuer.rstrip("/"))
    with pytest.raises(KeysUnavailable):
        verifier_for(source).verify(token)
    assert server.jwks_requests == 0


def test_rotation_accepted_without_restart(server):
    verifier = verifier_for(source_for(server))
    verifier.verify(server.fake.token())
    server.fake.rotate()
    verifier.verify(server.fake.token())  # new kid: refreshed at once
    assert server.jwks_requests == 2


def test_unknown_kid_flood_fetches_at_most_once_per_cooldown(server):
    verifier = verifier_for(source_for(server, cooldown=30))
    verifier.verify(server.fake.token())
    attacker = FakeIssuer()
    attacker.issuer = server.fake.issuer
    for _ in range(200):
        with pytest.raises(InvalidToken) as info:
            verifier.verify(attacker.token(kid=uuid.uuid4().hex))
        assert info.value.reason == "unknown_kid"
    assert server.jwks_requests == 2  # the warm-up plus one refresh for the whole flood


def test_endpoint_down_after_warmup_keeps_valid_tokens_working(server, caplog):
    clock = Clock()
    source = source_for(server, clock=clock, stale_if_error=3600)
    verifier = verifier_for(source, clock=clock)
    verifier.verify(server.fake.token())
    server.mode = "down"
    clock.now += 400  # past the 300 s max-age
    with caplog.at_level(logging.WARNING, logger="drf_m2m_auth.jwks"):
        for _ in range(5):
            verifier.verify(server.fake.token())
            clock.now += 61  # each retry after the pause fails again
    outage_lines = [r for r in caplog.records if "Cannot refresh JWKS" in r.getMessage()]
    assert len(outage_lines) == 1 and server.jwks_url in outage_lines[0].getMessage()
    server.mode = "ok"
    clock.now += 61
    verifier.verify(server.fake.token())
    assert any("reachable again" in r.getMessage() for r in caplog.records)


def test_stale_window_is_bounded(server):
    clock = Clock()
    verifier = verifier_for(source_for(server, clock=clock, stale_if_error=600), clock=clock)
    raw = server.fake.token()
    verifier.verify(raw)
    server.mode = "down"
    clock.now += 300 + 601
    with pytest.raises(KeysUnavailable):
        verifier.verify(server.fake.token())


def test_cold_start_while_down_is_503_and_recovers_within_seconds(server):
    clock = Clock()
    source = source_for(server, clock=clock, cold_retry=2, cooldown=30)
    verifier = verifier_for(source, clock=clock)
    server.mode = "down"
    with pytest.raises(KeysUnavailable) as info:
        verifier.verify(server.fake.token())
    assert 1 <= info.value.retry_after <= 2
    with pytest.raises(KeysUnavailable):  # inside the backoff: no new request to the issuer
        verifier.verify(server.fake.token())
    assert server.jwks_requests == 1
    server.mode = "ok"
    clock.now += 2.1  # seconds, not the 30 s cooldown
    verifier.verify(server.fake.token())


def test_slow_endpoint_fails_within_timeout(server):
    server.mode, server.delay = "slow", 3.0
    verifier = verifier_for(source_for(server, timeout=0.5))
    started = time.monotonic()
    with pytest.raises(KeysUnavailable):
        verifier.verify(server.fake.token())
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("mode", ["garbage", "huge", "html"])
def test_bad_responses_are_503_not_500(server, mode):
    server.mode = mode
    verifier = verifier_for(source_for(server, max_bytes=64 * 1024))
    with pytest.raises(KeysUnavailable):
        verifier.verify(server.fake.token())


def test_sixteen_threads_cold_cause_one_fetch(server):
    verifier = verifier_for(source_for(server))
    tokens = [server.fake.token() for _ in range(16)]
    barrier = threading.Barrier(16)
    errors = []

    def work(raw):
        barrier.wait()
        try:
            verifier.verify(raw)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    assert server.jwks_requests == 1


def test_shared_cache_serves_a_second_process_without_fetching(server):
    shared = LocMemCache(f"jwks-{uuid.uuid4().hex}", {})
    first = source_for(server, shared_cache=shared)
    second = source_for(server, shared_cache=shared)
    verifier_for(first).verify(server.fake.token())
    verifier_for(second).verify(server.fake.token())
    assert server.jwks_requests == 1 and second.source == "shared cache"
    # a rotation seen by one worker reaches the other through the cache, without a second fetch
    server.fake.rotate()
    verifier_for(first).verify(server.fake.token())
    verifier_for(second).verify(server.fake.token())
    assert server.jwks_requests == 2


def test_four_processes_cold_share_one_fetch(server, tmp_path):
    """Real processes, a FileBasedCache as the shared cache: a cold fleet makes one JWKS request."""
    script = textwrap.dedent(f"""
        import sys, time
        import django
        from django.conf import settings
        settings.configure(CACHES={{"default": {{"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                                              "LOCATION": {str(tmp_path)!r}}}}})
        django.setup()
        from django.core.cache import cache
        from drf_m2m_auth.jwks import HTTPFetcher, JWKSource
        from drf_m2m_auth.tokens import TokenVerifier
        src = JWKSource({server.fake.issuer!r}, jwks_url={server.jwks_url!r}, fetch=HTTPFetcher(), shared_cache=cache)
        v = TokenVerifier(sources={{src.issuer: src}}, audiences=[{AUD!r}])
        start_at = float(sys.argv[1])
        time.sleep(max(0, start_at - time.time()))
        v.verify(sys.argv[2])
        print(src.fetch_count)
    """)
    start_at = str(time.time() + 1.5)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, start_at, server.fake.token()],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert sum(int(out.strip()) for out, _ in outputs) == 1
    assert server.jwks_requests == 1


def test_max_age_is_clamped(server):
    server.max_age = 5
    source = source_for(server, min_ttl=60, max_ttl=3600)
    verifier_for(source).verify(server.fake.token())
    assert 59 <= source.expires_at - source.fetched_at <= 61
    assert parse_max_age("public, max-age=86400, must-revalidate") == 86400
    assert parse_max_age(None) is None and parse_max_age("no-store") == 0


@pytest.mark.parametrize(
    "url,ok",
    [
        ("https://tenant.auth0.com/.well-known/jwks.json", True),
        ("http://127.0.0.1:8000/jwks", True),
        ("http://localhost/jwks", True),
        ("http://[::1]:9/jwks", True),
        ("http://127.5.5.5/jwks", True),
        ("http://tenant.auth0.com/jwks", False),
        ("ftp://x/jwks", False),
        ("https://user:pw@x/jwks", False),
        ("/relative", False),
        ("http://localhost.evil.com/jwks", False),
    ],
)
def test_https_only_except_loopback(url, ok):
    if ok:
        check_url(url)
    else:
        with pytest.raises(JWKSError):
            check_url(url)


def test_opted_in_http_host():
    check_url("http://keys.internal/jwks", insecure_hosts=["keys.internal"])


@pytest.mark.filterwarnings("ignore:Key size")
def test_parse_skips_bad_keys_not_the_set():
    fake = FakeIssuer(kid="good")
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    keys = [
        {**public_jwk(FakeIssuer().private_key, "enc"), "use": "enc"},
        {**public_jwk(FakeIssuer().private_key, "ops"), "key_ops": ["encrypt"]},
        public_jwk(weak, "weak"),
        {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
        {"kty": "oct", "kid": "sym", "k": b64url(b"secret")},
        {**public_jwk(FakeIssuer().private_key, "wrong-alg"), "alg": "RS512"},
        "not a dict",
        public_jwk(fake.private_key, "good"),
    ]
    keyset = parse_jwks({"keys": keys}, ["RS256"])
    assert [k.kid for k in keyset.all] == ["good"]
    with pytest.raises(JWKSError):
        parse_jwks({"keys": "nope"}, ["RS256"])
