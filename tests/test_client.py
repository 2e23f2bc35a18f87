"""drf_m2m_auth.client against a real token endpoint and API over HTTP on 127.0.0.1."""

import base64
import logging
import math
import multiprocessing
import socket
import subprocess
import sys
import threading
import time
import traceback

import pytest
import requests

from drf_m2m_auth.client import (
    AccessDenied,
    ClientCredentials,
    IssuerUnavailable,
    MalformedTokenResponse,
    RateLimited,
    TokenRequestError,
)
from drf_m2m_auth.testing import FakeClock
from tests.client_support.issuer import LocalIssuer
from tests.client_support.sqlite_cache import DictCache, SqliteCache
from tests.client_support.workers import call_rejecting_api, fetch_tokens

SECRET = "s3cret-Do-Not-Leak"
AUDIENCE = "https://api.example.com"


def clock_at_start() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def issuer():
    with LocalIssuer() as server:
        yield server


def make(issuer, **kwargs):
    kwargs.setdefault("backoff", 0.01)
    kwargs.setdefault("failure_cooldown", 0)
    return ClientCredentials(issuer.token_url, "svc-a", SECRET, AUDIENCE, **kwargs)


def test_module_imports_without_django():
    code = "import sys, drf_m2m_auth.client; assert 'django' not in sys.modules and 'rest_framework' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_client_secret_post_sends_credentials_audience_and_extra_params(issuer):
    creds = make(issuer, extra_params={"organization": "org_123"})
    assert creds.token() == "tok-1"
    (form,) = issuer.token_requests
    assert form == {
        "grant_type": "client_credentials",
        "client_id": "svc-a",
        "client_secret": SECRET,
        "audience": AUDIENCE,
        "organization": "org_123",
        "_authorization": None,
    }


def test_client_secret_basic_sends_credentials_in_the_header_and_scope_when_given(issuer):
    creds = make(issuer, auth_method="client_secret_basic", scope="read:data write:data")
    creds.token()
    (form,) = issuer.token_requests
    scheme, encoded = form.pop("_authorization").split(" ")
    assert (scheme, base64.b64decode(encoded).decode()) == ("Basic", f"svc-a:{SECRET}")
    assert form == {"grant_type": "client_credentials", "audience": AUDIENCE, "scope": "read:data write:data"}


def test_a_thousand_api_calls_make_one_token_request(issuer):
    creds = make(issuer)
    with requests.Session() as session:
        statuses = {session.get(issuer.api_url, auth=creds.auth, timeout=5).status_code for _ in range(1000)}
    assert statuses == {200}
    assert (len(issuer.token_requests), issuer.api_requests) == (1, 1000)


def test_32_threads_on_a_cold_start_make_one_token_request(issuer):
    issuer.delay = 0.2  # every thread arrives while the first fetch is in flight
    creds, barrier, seen = make(issuer), threading.Barrier(32), []

    def call():
        barrier.wait(timeout=10)
        seen.append(creds.token())

    threads = [threading.Thread(target=call) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert seen == ["tok-1"] * 32
    assert len(issuer.token_requests) == 1


@pytest.mark.slow
def test_four_processes_sharing_a_cache_make_one_token_request(issuer, tmp_path):
    issuer.delay = 0.3
    ctx = multiprocessing.get_context("spawn")  # no fork of pytest's threads and sockets
    barrier, results = ctx.Barrier(4), ctx.Queue()
    cache_path = tmp_path / "tokens.sqlite3"
    SqliteCache(cache_path)  # create the table once, before the race
    procs = [ctx.Process(target=fetch_tokens, args=(issuer.token_url, cache_path, barrier, results)) for _ in range(4)]
    for proc in procs:
        proc.start()
    try:
        reports = [results.get(timeout=45) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    assert [r[:2] for r in reports] == [(["tok-1"], 4)] * 4
    assert not any(r[2] for r in reports), "a worker imported django"
    assert len(issuer.token_requests) == 1


def test_a_django_cache_alias_is_shared_and_keyed_without_the_secret(issuer, settings):
    from django.core.cache import caches

    settings.CACHES = {"m2m": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    first, second = make(issuer, cache="m2m"), make(issuer, cache="m2m")
    assert first.token() == second.token() == "tok-1"
    assert len(issuer.token_requests) == 1
    keys = list(caches["m2m"]._cache)
    assert keys and not any(SECRET in key for key in keys)


def test_a_token_near_expiry_is_refreshed_before_it_expires(issuer):
    clock = clock_at_start()
    creds = make(issuer, clock=clock, refresh_margin=60, refresh_jitter=60)
    assert creds.token() == "tok-1"
    expires_at = clock.now + 3600
    clock.now = expires_at - 121  # before the earliest jittered refresh point
    assert creds.token() == "tok-1"
    clock.now = expires_at - 59  # inside every refresh window, still valid
    assert creds.token() == "tok-2"
    assert len(issuer.token_requests) == 2


def test_refresh_points_are_jittered_across_a_fleet(issuer):
    clock, cache = clock_at_start(), DictCache()
    fleet = [make(issuer, clock=clock, cache=cache) for _ in range(20)]
    assert {creds.token() for creds in fleet} == {"tok-1"}
    expires_at, renewed_at = clock.now + 3600, {}
    for lead in range(125, 55, -1):  # one-second steps through the refresh window
        clock.now = expires_at - lead
        for index, creds in enumerate(fleet):
            if creds.token() != "tok-1":
                renewed_at.setdefault(index, lead)
    assert len(renewed_at) == 20  # everyone moved on, every lead inside [60, 120]
    assert all(60 <= lead <= 120 for lead in renewed_at.values())
    # The first one due refreshed for the whole fleet, at its own jittered moment.
    assert len(issuer.token_requests) == 2
    assert len(set(renewed_at.values())) >= 5  # 20 draws over 60 s: not one moment


def test_a_failed_refresh_ahead_of_expiry_keeps_the_valid_token(issuer):
    clock = clock_at_start()
    creds = make(issuer, clock=clock, failure_cooldown=30, max_retries=3)
    creds.token()
    clock.now += 3600 - 30
    issuer.script = [(503, {}, {"error": "temporarily_unavailable"})]
    assert creds.token() == "tok-1"  # one attempt only, no exception, no sleeping
    assert creds.token() == "tok-1"  # cooldown: the issuer is not asked again yet
    assert len(issuer.token_requests) == 2
    clock.now += 31
    assert creds.token() == "tok-3"


def test_a_revoked_token_is_replaced_and_the_request_retried_once(issuer):
    clock = clock_at_start()
    creds = make(issuer, clock=clock)
    assert requests.get(issuer.api_url, auth=creds.auth, timeout=5).json()["token"] == "tok-1"
    issuer.revoked.add("tok-1")
    clock.now += 60  # older than reject_cooldown
    response = requests.post(issuer.api_url, data=b"payload", auth=creds.auth, timeout=5)
    assert response.status_code == 200 and response.json()["token"] == "tok-2"
    assert [r.status_code for r in response.history] == [401]
    assert (len(issuer.token_requests), issuer.api_requests) == (2, 3)


def test_an_api_rejecting_every_token_never_loops_nor_burns_tokens(issuer):
    clock = clock_at_start()
    creds = make(issuer, clock=clock)
    issuer.reject_everything = True
    first = requests.get(issuer.api_url, auth=creds.auth, timeout=5)
    assert first.status_code == 401 and len(first.history) == 1  # renewed at once, resent once
    for _ in range(19):
        assert requests.get(issuer.api_url, auth=creds.auth, timeout=5).status_code == 401
    # Further forced renewals wait for reject_cooldown: 20 calls, 21 API hits, two tokens.
    assert (len(issuer.token_requests), issuer.api_requests) == (2, 21)
    clock.now += 29
    assert requests.get(issuer.api_url, auth=creds.auth, timeout=5).status_code == 401
    assert len(issuer.token_requests) == 2
    clock.now += 1
    response = requests.get(issuer.api_url, auth=creds.auth, timeout=5)
    assert response.status_code == 401 and len(response.history) == 1  # one retry, then stop
    assert (len(issuer.token_requests), issuer.api_requests) == (3, 24)


def test_a_token_revoked_a_moment_after_it_was_fetched_is_renewed_at_once(issuer):
    clock = clock_at_start()
    creds = make(issuer, clock=clock)
    assert creds.token() == "tok-1"
    issuer.revoked.add("tok-1")  # an operator revokes the client a second later, then restores it
    clock.now += 1
    response = requests.get(issuer.api_url, auth=creds.auth, timeout=5)
    assert response.status_code == 200 and response.json()["token"] == "tok-2"
    assert [r.status_code for r in response.history] == [401]


def test_a_streamed_body_is_not_resent(issuer):
    clock = clock_at_start()
    creds = make(issuer, clock=clock)
    creds.token()
    issuer.revoked.add("tok-1")
    clock.now += 60
    response = requests.post(issuer.api_url, data=iter([b"a", b"b"]), auth=creds.auth, timeout=5)
    assert response.status_code == 401 and issuer.api_requests == 1


def test_429_retry_after_is_honoured(issuer):
    issuer.script = [(429, {"Retry-After": "1"}, {"error": "too_many_requests"})]
    creds = make(issuer)
    started = time.monotonic()
    assert creds.token() == "tok-2"
    assert time.monotonic() - started >= 1.0
    assert len(issuer.token_requests) == 2


def test_429_asking_for_longer_than_max_wait_fails_fast_and_is_remembered(issuer):
    issuer.script = [(429, {"Retry-After": "120"}, "slow down")]
    creds = make(issuer, max_wait=5)
    with pytest.raises(RateLimited) as raised:
        creds.token()
    assert raised.value.retry_after == 120 and raised.value.status == 429
    with pytest.raises(RateLimited):
        creds.token()  # within Retry-After: not asked again
    assert len(issuer.token_requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_issuer_errors_are_retried_with_backoff_then_raised(issuer, status):
    issuer.script = [(status, {}, "down")] * 3
    creds = make(issuer, max_retries=2, failure_cooldown=30)
    with pytest.raises(IssuerUnavailable) as raised:
        creds.token()
    assert raised.value.status == status
    assert len(issuer.token_requests) == 3
    with pytest.raises(IssuerUnavailable):
        creds.token()  # cooldown: fail fast, do not hammer a failing issuer
    assert len(issuer.token_requests) == 3


def test_an_unreachable_issuer_raises_issuer_unavailable():
    with socket.socket() as sock:  # a port on which nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    creds = ClientCredentials(
        f"http://127.0.0.1:{port}/oauth/token", "svc-a", SECRET, AUDIENCE, max_retries=1, backoff=0.01
    )
    with pytest.raises(IssuerUnavailable, match="ConnectionError"):
        creds.token()


def test_a_slow_issuer_times_out(issuer):
    issuer.delay = 0.5
    creds = make(issuer, timeout=0.1, max_retries=1)
    with pytest.raises(IssuerUnavailable, match="Timeout"):
        creds.token()
    assert len(issuer.token_requests) == 2


@pytest.mark.parametrize(
    "status, error", [(403, "access_denied"), (401, "invalid_client"), (400, "unauthorized_client")]
)
def test_access_denied_names_the_audience_and_client_not_the_secret(issuer, status, error):
    description = f'Client is not authorized to access "{AUDIENCE}". secret was {SECRET}'
    issuer.script = [(status, {}, {"error": error, "error_description": description})]
    creds = make(issuer)
    with pytest.raises(AccessDenied) as raised:
        creds.token()
    message = str(raised.value)
    assert AUDIENCE in message and "svc-a" in message and SECRET not in message
    assert (raised.value.status, raised.value.error) == (status, error)
    assert len(issuer.token_requests) == 1  # never retried


@pytest.mark.parametrize(
    "body",
    [
        {"token_type": "Bearer", "expires_in": 3600},
        {"access_token": "abc", "token_type": "Bearer"},
        {"access_token": "abc", "expires_in": 0},
        {"access_token": "abc", "expires_in": 3600, "token_type": "mac"},
        "<html>not json</html>",
    ],
)
def test_malformed_token_responses_raise_a_clear_error(issuer, body):
    issuer.script = [(200, {}, body)]
    with pytest.raises(MalformedTokenResponse, match="token response|non-JSON"):
        make(issuer).token()


def test_a_200_carrying_an_oauth_error_is_an_error(issuer):
    issuer.script = [(200, {}, {"error": "invalid_request"})]
    with pytest.raises(TokenRequestError, match="invalid_request"):
        make(issuer).token()


def test_a_broken_shared_cache_degrades_to_a_local_token(issuer, caplog):
    class Broken:
        def get(self, *args):
            raise ConnectionError("redis down")

        set = add = delete = get

    creds = make(issuer, cache=Broken())
    assert creds.token() == creds.token() == "tok-1"
    assert "Shared cache 'custom' is failing (ConnectionError): continuing without it" in caplog.text


def test_plain_http_is_refused_except_on_loopback():
    with pytest.raises(ValueError, match="https"):
        ClientCredentials("http://tenant.auth0.com/oauth/token", "svc-a", SECRET, AUDIENCE)
    with pytest.raises(ValueError, match="auth_method"):
        ClientCredentials("https://x/oauth/token", "svc-a", SECRET, AUDIENCE, auth_method="jwt")


def test_secrets_never_appear_in_logs_messages_or_reprs(issuer, caplog):
    caplog.set_level(logging.DEBUG)  # urllib3 and authlib included
    cache = DictCache()
    creds = make(issuer, cache=cache, max_retries=1)
    token = creds.token()
    issuer.script = [
        (503, {}, SECRET),
        (503, {}, SECRET),
        (403, {}, {"error": "access_denied", "error_description": SECRET}),
        (200, {}, {"access_token": "x", "error_description": SECRET}),
        (200, {}, "not json " + SECRET),
    ]
    raised = []
    for _ in range(4):
        fresh = make(issuer, max_retries=1)
        with pytest.raises(TokenRequestError) as info:
            fresh.token()
        raised.append(info.value)
    texts = [repr(creds), str(creds), repr(creds.auth), caplog.text, repr(cache.data)]
    texts += [repr(exc) + str(exc) + "".join(traceback.format_exception(exc)) for exc in raised]
    assert not [text for text in texts if SECRET in text]
    assert token not in repr(creds) + repr(creds._held) + caplog.text


def test_a_token_stripped_on_a_cross_host_redirect_is_not_put_back(issuer):
    creds = make(issuer)
    response = requests.get(issuer.base_url + "/elsewhere", auth=creds.auth, timeout=5)
    assert response.status_code == 401 and [r.status_code for r in response.history] == [302]
    assert [auth for host, auth in issuer.api_log if host.startswith("localhost")] == [""]


# --- redirects, exact shared-cache identities, clocks ahead, fleet-wide forced renewals --


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_on_the_token_request_is_an_error_and_the_secret_is_not_resent(issuer, status):
    with LocalIssuer() as elsewhere:  # plain http, another host name: where Location points
        target = elsewhere.token_url.replace("127.0.0.1", "localhost")
        issuer.script = [(status, {"Location": target}, "")]
        creds = make(issuer, max_retries=2)
        with pytest.raises(TokenRequestError) as raised:
            creds.token()
        assert elsewhere.token_requests == []  # nothing, the secret least of all, went there
    message = str(raised.value)
    assert raised.value.status == status and f"HTTP {status}" in message and "'localhost'" in message
    assert SECRET not in message + repr(raised.value)
    assert not isinstance(raised.value, IssuerUnavailable)  # not retried
    assert len(issuer.token_requests) == 1


def test_shared_keys_are_exact_digests_under_the_prefix_and_entries_name_their_identity(issuer):
    cache = DictCache()
    one = make(issuer, cache=cache, scope="read:a_b")
    two = make(issuer, cache=cache, scope="read:a/b")  # a lossy rewrite would make these one key
    assert one.token() == "tok-1" and two.token() == "tok-2"
    assert all(key.startswith("drf_m2m_auth:client-") for key in cache.data)
    assert not any("svc-a" in key or "read" in key for key in cache.data)
    # Whatever sits under a key is used only if it names the exact identity it was written for.
    shared = one._shared_tokens().shared
    cache.set(shared.key("client-token", *two._identity), cache.get(shared.key("client-token", *one._identity)))
    fresh = make(issuer, cache=cache, scope="read:a/b")
    assert fresh.token() == "tok-3"


def test_a_django_cache_uses_cache_key_prefix(issuer, settings):
    from django.core.cache import caches

    settings.CACHES = {"m2m": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "CACHE_KEY_PREFIX": "staging"}
    assert make(issuer, cache="m2m").token() == make(issuer, cache=caches["m2m"]).token() == "tok-1"
    assert [key.split(":")[2:4] for key in caches["m2m"]._cache] == [["staging", "client-token"]]  # ":1:" is Django's


def test_a_shared_token_from_a_host_whose_clock_runs_ahead_is_clamped(issuer):
    cache, clock, fast = DictCache(), clock_at_start(), clock_at_start()
    fast.now += 3600  # that host thinks it is an hour later
    assert make(issuer, cache=cache, clock=fast).token() == "tok-1"
    creds = make(issuer, cache=cache, clock=clock)
    assert creds.token() == "tok-1"
    held = creds._held.token
    assert held.obtained_at == clock.now and held.expires_at == clock.now + 3600
    issuer.revoked.add("tok-1")  # a token "obtained in the future" is still renewed on a 401
    response = requests.get(issuer.api_url, auth=creds.auth, timeout=5)
    assert response.status_code == 200 and response.json()["token"] == "tok-2"


@pytest.mark.slow
def test_an_api_rejecting_every_token_costs_one_token_request_per_cooldown_per_fleet(issuer, tmp_path):
    issuer.reject_everything = True
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    cache_path = tmp_path / "tokens.sqlite3"
    SqliteCache(cache_path)
    seconds, cooldown = 3.0, 1.0
    args = (issuer.token_url, issuer.api_url, cache_path, barrier, results, seconds, cooldown)
    procs = [ctx.Process(target=call_rejecting_api, args=args) for _ in range(4)]
    for proc in procs:
        proc.start()
    try:
        reports = [results.get(timeout=60) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    assert all(r[0] == [401] and r[1] >= 10 for r in reports), reports
    assert not any(r[2] for r in reports), "a worker imported django"
    # One cold-start token for the fleet, then at most one forced renewal per cooldown window
    # over the fleet's whole span (one more for a window straddling its start); per process it
    # would be 4 per window.
    span = max(r[4] for r in reports) - min(r[3] for r in reports)
    assert 2 <= len(issuer.token_requests) <= 1 + math.ceil(span / cooldown) + 1, (len(issuer.token_requests), span)


def test_a_failing_issuer_is_asked_once_per_failure_cooldown_by_the_whole_fleet(issuer):
    cache, clock = DictCache(), clock_at_start()
    issuer.script = [(503, {}, {"error": "temporarily_unavailable"})] * 2
    first = make(issuer, cache=cache, clock=clock, max_retries=1, failure_cooldown=30)
    with pytest.raises(IssuerUnavailable) as raised:
        first.token()
    assert len(issuer.token_requests) == 2  # one try and one retry
    fleet = [make(issuer, cache=cache, clock=clock, max_retries=1, failure_cooldown=30) for _ in range(5)]
    for creds in fleet:  # other processes fail fast with the same error, without asking
        with pytest.raises(IssuerUnavailable) as again:
            creds.token()
        assert str(again.value) == str(raised.value) and again.value.status == 503
    assert len(issuer.token_requests) == 2
    clock.now += 31
    assert fleet[0].token() == "tok-3" and fleet[1].token() == "tok-3"
