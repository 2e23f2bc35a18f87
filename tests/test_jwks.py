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
from drf_m2m_auth.fetch import HTTPFetcher, check_url, parse_max_age
from drf_m2m_auth.jwks import JWKSource
from drf_m2m_auth.keys import parse_jwks
from drf_m2m_auth.testing import FakeClock, FakeIssuer, JWKSServer, b64url, generate_private_key, public_jwk
from drf_m2m_auth.tokens import TokenVerifier

AUD = "https://api.example"


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
    clock = FakeClock()
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
    clock = FakeClock()
    verifier = verifier_for(source_for(server, clock=clock, stale_if_error=600), clock=clock)
    raw = server.fake.token()
    verifier.verify(raw)
    server.mode = "down"
    clock.now += 300 + 601
    with pytest.raises(KeysUnavailable):
        verifier.verify(server.fake.token())


def test_cold_start_while_down_is_503_and_recovers_within_seconds(server):
    clock = FakeClock()
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
    shared = _shared()
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
        from django.core.cache import caches
        from drf_m2m_auth.fetch import HTTPFetcher
        from drf_m2m_auth.jwks import JWKSource
        from drf_m2m_auth.shared import SharedCache
        cache = SharedCache(caches["default"], prefix="test", alias="default")
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


# --- shared-cache keys per exact issuer and URL; no redirects; empty sets ------------------


def _shared(cache=None):
    from drf_m2m_auth.shared import SharedCache

    return SharedCache(cache or LocMemCache(f"jwks-{uuid.uuid4().hex}", {}), prefix="test")


def test_issuers_that_differ_only_in_punctuation_never_share_a_key_set():
    """acme/corp and acme_corp once mapped to one cache key: B's keys then verified A's tokens."""
    shared = _shared()
    with JWKSServer(FakeIssuer(audience=AUD)) as srv_a, JWKSServer(FakeIssuer(audience=AUD)) as srv_b:
        srv_a.fake.issuer = "https://idp.example.com/t/acme/corp/"
        srv_b.fake.issuer = "https://idp.example.com/t/acme_corp/"
        source_b = JWKSource(srv_b.fake.issuer, jwks_url=srv_b.jwks_url, fetch=HTTPFetcher(), shared_cache=shared)
        source_a = JWKSource(srv_a.fake.issuer, jwks_url=srv_a.jwks_url, fetch=HTTPFetcher(), shared_cache=shared)
        verifier_for(source_b).verify(srv_b.fake.token())  # B's keys land in the shared cache
        forged = srv_b.fake.token(iss=srv_a.fake.issuer)  # signed by B's key, claiming to be A
        with pytest.raises(InvalidToken) as info:
            verifier_for(source_a).verify(forged)
        assert info.value.reason == "unknown_kid"
        assert srv_a.jwks_requests >= 1 and source_a.source == "network"
        verifier_for(source_a).verify(srv_a.fake.token())


def test_an_entry_for_another_jwks_url_is_refused_and_its_uri_never_adopted():
    """Same issuer, different configured JWKS URL (or discovery): the entry is not reused."""
    shared = _shared()
    with JWKSServer(FakeIssuer(audience=AUD)) as srv, JWKSServer(FakeIssuer(audience=AUD)) as other:
        other.fake.issuer = srv.fake.issuer
        by_other = JWKSource(srv.fake.issuer, jwks_url=other.jwks_url, fetch=HTTPFetcher(), shared_cache=shared)
        verifier_for(by_other).verify(other.fake.token())
        discovering = JWKSource(srv.fake.issuer, fetch=HTTPFetcher(), shared_cache=shared)
        with pytest.raises(InvalidToken):
            verifier_for(discovering).verify(other.fake.token())
        assert discovering.jwks_url == srv.jwks_url and srv.discovery_requests == 1


class _Redirector:
    """A real 127.0.0.1 server answering every GET with ``status`` and a Location elsewhere."""

    def __init__(self, status, location):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests += 1
                self.send_response(status)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("discovery", [False, True])
def test_jwks_and_discovery_fetches_never_follow_redirects(server, status, discovery):
    redirector = _Redirector(status, server.jwks_url.replace("127.0.0.1", "localhost"))
    try:
        url = redirector.base + "/.well-known/jwks.json"
        with pytest.raises(JWKSError) as info:
            HTTPFetcher(timeout=2)(url if not discovery else redirector.base + "/.well-known/openid-configuration")
        assert str(status) in str(info.value) and "localhost" in str(info.value)
        source = JWKSource(redirector.base + "/", jwks_url=None if discovery else url, fetch=HTTPFetcher(timeout=2))
        with pytest.raises(KeysUnavailable):
            verifier_for(source).verify(server.fake.token(iss=redirector.base + "/"))
        assert server.jwks_requests == 0 and server.discovery_requests == 0  # the target was never asked
    finally:
        redirector.stop()


@pytest.mark.parametrize("published", ["empty", "unsuitable"])
def test_a_set_without_usable_keys_is_503_and_recovers_on_the_cold_schedule(server, published, caplog):
    clock = FakeClock()
    source = source_for(server, clock=clock, cold_retry=2, cooldown=30)
    verifier = verifier_for(source, clock=clock)
    healthy = server.fake.keys
    server.fake.keys = [] if published == "empty" else [("ec-1", "ES256", generate_private_key("ES256"))]
    with caplog.at_level(logging.WARNING, logger="drf_m2m_auth.jwks"):
        with pytest.raises(KeysUnavailable) as info:
            verifier.verify(_token_for(healthy, server))
    assert 1 <= info.value.retry_after <= 2
    lines = [r.getMessage() for r in caplog.records if "no key for the allowed algorithms" in r.getMessage()]
    assert len(lines) == 1 and "RS256" in lines[0]
    assert ("ES256/EC/P-256" in lines[0]) if published == "unsuitable" else ("offers: none" in lines[0])
    server.fake.keys = healthy
    clock.now += 2.1  # seconds, not the 30 s unknown-kid cooldown
    verifier.verify(server.fake.token())
    assert server.jwks_requests == 2


def _token_for(keys, server):
    fake = FakeIssuer(audience=AUD)
    fake.issuer, fake.keys = server.fake.issuer, keys
    return fake.token()


def test_unknown_kid_waits_for_another_process_fetch_instead_of_answering_401(server):
    """Emergency rotation: worker B meets the new kid while worker A is fetching it."""
    shared = _shared()
    worker_a = source_for(server, shared_cache=shared, lock_wait=5, cooldown=30)
    worker_b = source_for(server, shared_cache=shared, lock_wait=5, cooldown=30)
    verifier_for(worker_a).verify(server.fake.token())
    verifier_for(worker_b).verify(server.fake.token())  # both warm: same keys
    server.fake.rotate()
    new_token = server.fake.token()
    server.mode, server.delay = "slow", 1.0  # the issuer takes a second to answer
    results = {}

    def run(name, source):
        try:
            verifier_for(source).verify(new_token)
            results[name] = "ok"
        except Exception as exc:  # reported below
            results[name] = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"

    a = threading.Thread(target=run, args=("a", worker_a))
    a.start()
    deadline = time.monotonic() + 5
    while server.jwks_requests < 2 and time.monotonic() < deadline:  # A's fetch is in flight
        time.sleep(0.01)
    b = threading.Thread(target=run, args=("b", worker_b))
    b.start()
    a.join(10)
    b.join(10)
    assert results == {"a": "ok", "b": "ok"}
    assert server.jwks_requests == 2  # B waited for A's fetch and made none of its own
    assert worker_b.source == "shared cache"


def test_an_unknown_kid_with_no_fetch_in_flight_is_answered_at_once(server):
    """The wait only happens while a fetch is in flight: a flood of unknown kids never waits."""
    shared = _shared()
    worker_a = source_for(server, shared_cache=shared, lock_wait=5, cooldown=30)
    worker_b = source_for(server, shared_cache=shared, lock_wait=5, cooldown=30)
    verifier_for(worker_a).verify(server.fake.token())
    attacker = FakeIssuer(audience=AUD)
    attacker.issuer = server.fake.issuer
    with pytest.raises(InvalidToken):
        verifier_for(worker_a).verify(attacker.token(kid="nope-1"))  # takes the fleet-wide cooldown
    started = time.monotonic()
    for i in range(20):
        with pytest.raises(InvalidToken) as info:
            verifier_for(worker_b).verify(attacker.token(kid=f"nope-{i + 2}"))
        assert info.value.reason == "unknown_kid"
    assert time.monotonic() - started < 2.0


# --- a JWKS key member of any JSON type skips that key, never the set ------------

from hypothesis import given  # noqa: E402
from hypothesis import settings as hsettings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
_GOOD = {alg: FakeIssuer(alg=alg, kid=f"good-{alg}") for alg in ("RS256", "ES256", "EdDSA")}


@hsettings(max_examples=150, deadline=None)
@given(
    st.sampled_from(sorted(_GOOD)),
    st.dictionaries(
        st.sampled_from(["kty", "crv", "alg", "use", "kid", "key_ops", "n", "e", "x", "y", "d", "k"])
        | st.text(max_size=4),
        _JSON,
        min_size=1,
        max_size=3,
    ),
    st.booleans(),
)
def test_a_key_member_of_any_json_type_never_takes_the_set_down(alg, members, replace_doc_member):
    good = _GOOD[alg]
    odd = {**good.jwks()["keys"][0], "kid": "odd", **members}
    doc = {"keys": [odd, *good.jwks()["keys"]]}
    if replace_doc_member:
        doc["extra"] = members
    keyset = parse_jwks(doc, ["RS256", "ES256", "EdDSA"])
    assert keyset.find(f"good-{alg}", alg) is not None  # the good key survives whatever its neighbour holds


@pytest.mark.parametrize("doc", [None, [], "keys", 1, {"keys": None}, {"keys": {}}, {"keys": "x"}, {"nokeys": []}])
def test_a_document_without_a_keys_array_is_a_fetch_error(doc):
    with pytest.raises(JWKSError):
        parse_jwks(doc, ["RS256"])


def test_unknown_kid_after_waiting_for_a_fetch_that_read_the_old_set_fetches_once_itself(server):
    """Emergency rotation during another worker's TTL refresh.

    Worker A's TTL refresh read the JWKS just before the new key was published and answers just
    after it; worker B meets the new kid meanwhile and waits for A's result, which lacks the kid.
    B must then fetch once itself (still under the fleet-wide cooldown), not answer 401.
    """
    shared = _shared()
    http = HTTPFetcher(timeout=2)
    read_old, answer = threading.Event(), threading.Event()
    hold, skew = {"on": False}, {"s": 0.0}
    claim = shared.claim

    def claim_then_answer(key, seconds, owner=None):
        got = claim(key, seconds, owner)
        if got is False and hold["on"]:  # B is refused A's fetch claim: A's answer arrives while B waits
            threading.Timer(0.2, answer.set).start()
        return got

    shared.claim = claim_then_answer

    def fetch_a(url):
        doc = http(url)
        if hold["on"]:  # the document left the issuer before the rotation; the answer comes after it
            read_old.set()
            answer.wait(5)
        return doc

    worker_b = source_for(server, shared_cache=shared, lock_wait=5, cooldown=30)
    worker_a = JWKSource(
        server.fake.issuer,
        jwks_url=server.jwks_url,
        fetch=fetch_a,
        shared_cache=shared,
        lock_wait=5,
        cooldown=30,
        clock=lambda: time.time() + skew["s"],
    )
    verifier_for(worker_b).verify(server.fake.token())
    verifier_for(worker_a).verify(server.fake.token())
    skew["s"], hold["on"] = 3600.0, True  # A's keys are due for a TTL refresh; B's are fresh
    refresh = threading.Thread(target=worker_a.refresh_if_due)
    refresh.start()
    assert read_old.wait(5)
    server.fake.rotate(retire_old=True)  # emergency rotation: published while A's answer is on its way
    new_token = server.fake.token()
    try:
        verifier_for(worker_b).verify(new_token)  # before the fix: InvalidToken unknown_kid
    finally:
        answer.set()
        refresh.join(10)
    assert (worker_a.fetch_count, worker_b.fetch_count) == (1, 2)  # B fetched once after A's answer lacked the kid
    attacker = FakeIssuer(audience=AUD)
    attacker.issuer = server.fake.issuer
    with pytest.raises(InvalidToken):  # the fleet-wide cooldown still bounds unknown kids
        verifier_for(worker_b).verify(attacker.token(kid="nope"))
    assert server.jwks_requests == 3
