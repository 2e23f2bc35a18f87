"""jwks_refreshed / jwks_fetch_failed: sent from the real refresh paths, after the lock, never fatal."""

import contextlib
import logging
import threading

import pytest
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.test import APIClient

from drf_m2m_auth.errors import KeysUnavailable
from drf_m2m_auth.fetch import HTTPFetcher
from drf_m2m_auth.jwks import JWKSource
from drf_m2m_auth.signals import jwks_fetch_failed, jwks_refreshed, token_rejected
from drf_m2m_auth.testing import FakeClock, FakeIssuer, JWKSServer
from drf_m2m_auth.verifier import get_verifier

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]


@contextlib.contextmanager
def listening(*signals):
    seen = []
    uids = []
    for signal in signals:
        uid = f"test-{id(signal)}"
        name = (
            "jwks_refreshed"
            if signal is jwks_refreshed
            else ("jwks_fetch_failed" if signal is jwks_fetch_failed else "token_rejected")
        )

        def receiver(sender, _name=name, **kw):
            kw.pop("signal", None)
            seen.append((_name, kw))

        signal.connect(receiver, weak=False, dispatch_uid=uid)
        uids.append((signal, uid))
    try:
        yield seen
    finally:
        for signal, uid in uids:
            signal.disconnect(dispatch_uid=uid)


@pytest.fixture
def server():
    srv = JWKSServer(FakeIssuer(audience="https://api.example"))
    yield srv
    srv.stop()


def test_first_fetch_sends_jwks_refreshed_through_settings(m2m_issuer, m2m_jwks_server):
    with listening(jwks_refreshed) as seen:
        get_verifier().verify(m2m_issuer.token())
    assert seen == [
        (
            "jwks_refreshed",
            {
                "issuer": m2m_issuer.issuer,
                "url": m2m_jwks_server.jwks_url,
                "source": "network",
                "keys": 1,
                "changed": True,
            },
        )
    ]


def test_rotation_is_a_change_and_a_same_set_refetch_is_not(server):
    events = []
    clock = FakeClock()
    source = JWKSource(
        server.fake.issuer,
        jwks_url=server.jwks_url,
        fetch=HTTPFetcher(timeout=2),
        clock=clock,
        on_event=lambda name, **kw: events.append((name, kw["changed"], kw["keys"])),
    )
    source.get_key(server.fake.kid, "RS256")
    clock.advance(301)  # past max-age: same keys fetched again
    source.get_key(server.fake.kid, "RS256")
    new_kid = server.fake.rotate()
    source.get_key(new_kid, "RS256")  # unknown kid: refresh at once
    assert events == [("jwks_refreshed", True, 1), ("jwks_refreshed", False, 1), ("jwks_refreshed", True, 2)]


def test_fetch_failures_are_sent_each_time_with_stale_flag(server):
    events = []
    clock = FakeClock()
    source = JWKSource(
        server.fake.issuer,
        jwks_url=server.jwks_url,
        fetch=HTTPFetcher(timeout=2),
        clock=clock,
        stale_if_error=600,
        on_event=lambda name, **kw: events.append((name, kw)),
    )
    source.get_key(server.fake.kid, "RS256")
    server.mode = "down"
    clock.advance(301)
    source.get_key(server.fake.kid, "RS256")  # stale keys still served
    clock.advance(700)  # past the stale window: keys dropped
    with pytest.raises(KeysUnavailable):
        source.get_key(server.fake.kid, "RS256")
    failures = [kw for name, kw in events if name == "jwks_fetch_failed"]
    assert [f["stale"] for f in failures] == [True, False]
    assert all(f["url"] == server.jwks_url and "HTTP 503" in f["error"] for f in failures)


def test_discovery_failure_names_the_discovery_url(server):
    events = []
    server.mode = "down"
    source = JWKSource(
        server.fake.issuer, fetch=HTTPFetcher(timeout=2), on_event=lambda name, **kw: events.append((name, kw["url"]))
    )
    with pytest.raises(KeysUnavailable):
        source.get_key(None, "RS256")
    assert events == [("jwks_fetch_failed", server.fake.issuer.rstrip("/") + "/.well-known/openid-configuration")]


def test_shared_cache_load_is_reported_as_such(server):
    from drf_m2m_auth.shared import SharedCache

    cache = SharedCache(LocMemCache("signals-test", {}), prefix="test")
    first = JWKSource(server.fake.issuer, jwks_url=server.jwks_url, fetch=HTTPFetcher(timeout=2), shared_cache=cache)
    first.get_key(server.fake.kid, "RS256")
    events = []
    second = JWKSource(
        server.fake.issuer,
        jwks_url=server.jwks_url,
        fetch=HTTPFetcher(timeout=2),
        shared_cache=cache,
        on_event=lambda name, **kw: events.append((name, kw["source"])),
    )
    second.get_key(server.fake.kid, "RS256")
    assert events == [("jwks_refreshed", "shared cache")] and server.jwks_requests == 1


def test_receiver_runs_outside_the_lock_and_may_verify(server):
    """A receiver that itself asks the source for a key must not deadlock (events are sent after the lock)."""
    done = threading.Event()

    def receiver(name, **kw):
        source.get_key(server.fake.kid, "RS256")
        done.set()

    source = JWKSource(server.fake.issuer, jwks_url=server.jwks_url, fetch=HTTPFetcher(timeout=2), on_event=receiver)
    worker = threading.Thread(target=source.get_key, args=(server.fake.kid, "RS256"), daemon=True)
    worker.start()
    worker.join(5)
    assert done.is_set() and not worker.is_alive()


def test_broken_receiver_never_fails_the_request(m2m_issuer, caplog):
    def explode(sender, **kw):
        raise RuntimeError("metrics backend down")

    jwks_refreshed.connect(explode, weak=False, dispatch_uid="explode")
    try:
        with caplog.at_level(logging.ERROR):
            response = APIClient().get("/echo/", HTTP_AUTHORIZATION=f"Bearer {m2m_issuer.token()}")
    finally:
        jwks_refreshed.disconnect(dispatch_uid="explode")
    assert response.status_code == 200


def test_core_receiver_exception_is_logged_not_raised(server, caplog):
    def explode(name, **kw):
        raise RuntimeError("boom")

    source = JWKSource(server.fake.issuer, jwks_url=server.jwks_url, fetch=HTTPFetcher(timeout=2), on_event=explode)
    with caplog.at_level(logging.ERROR, logger="drf_m2m_auth.jwks"):
        assert source.get_key(server.fake.kid, "RS256") is not None
    assert any("receiver failed" in r.getMessage() for r in caplog.records)


def test_refresh_now_fetches_even_when_fresh(server):
    events = []
    source = JWKSource(
        server.fake.issuer,
        jwks_url=server.jwks_url,
        fetch=HTTPFetcher(timeout=2),
        on_event=lambda name, **kw: events.append(name),
    )
    source.get_key(server.fake.kid, "RS256")
    source.refresh_now()
    assert server.jwks_requests == 2 and events == ["jwks_refreshed", "jwks_refreshed"]


def test_rejections_log_reason_codes_without_the_token(m2m_issuer, caplog):
    token = m2m_issuer.token(aud="https://elsewhere")
    with listening(token_rejected) as seen, caplog.at_level(logging.DEBUG, logger="drf_m2m_auth"):
        APIClient().get("/echo/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert [kw["reason"] for _, kw in seen] == ["bad_audience"]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "reason=bad_audience" in text
    assert token not in text and token.split(".")[1] not in text and token.split(".")[2] not in text
