"""Async DRF views (adrf) under Django's ASGI handler: the same answers as the synchronous views, and
the blocking parts (a cold JWKS fetch, a revocation reload, the database) never run on the event loop.

The requests go through ``django.core.handlers.asgi.ASGIHandler`` as an ASGI server would send them;
this module is also the URL conf they are routed by.
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import path
from rest_framework.response import Response

from drf_m2m_auth.authentication import M2MJWTAuthentication
from drf_m2m_auth.models import Client
from drf_m2m_auth.permissions import HasResourceGrant, HasScopes

adrf_views = pytest.importorskip("adrf.views")

TIMEOUT = 15  # seconds, for any single ASGI message


class AsyncOrders(adrf_views.APIView):
    authentication_classes = [M2MJWTAuthentication]
    permission_classes = [HasScopes & HasResourceGrant]
    required_scopes = {"GET": ["read:orders"], "POST": ["write:orders"]}
    resource_name = "orders"

    async def get(self, request):
        return Response({"client": request.user.client_id, "scopes": sorted(request.auth.scopes)})


urlpatterns = [path("async/orders/", AsyncOrders.as_view())]


async def asgi_get(app, url: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = [(b"host", b"testserver")]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": url,
        "raw_path": url.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(TIMEOUT)
    body = b""
    while True:
        message = await communicator.receive_output(TIMEOUT)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(TIMEOUT)
    response_headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], response_headers, body


@pytest.fixture
def asgi(settings, m2m_issuer, transactional_db):
    # transactional_db: Django's ASGI handler runs each request's synchronous parts in a thread of its
    # own (ThreadSensitiveContext), with its own database connection, as in production.
    settings.ROOT_URLCONF = __name__
    # As Django's own test clients do: the handler's signals would close the test's connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield ASGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def get(app, token=None):
    return async_to_sync(asgi_get)(app, "/async/orders/", token)


def test_answers_200_403_and_401_like_the_sync_views(asgi, m2m_issuer):
    Client.objects.create(client_id="svc-a").grants.create(resource="orders")
    status, _, body = get(asgi, m2m_issuer.token(sub="svc-a@clients", scopes=["read:orders"]))
    assert status == 200 and b'"client":"svc-a"' in body

    status, headers, _ = get(asgi, m2m_issuer.token(sub="svc-a@clients", scopes=["write:orders"]))
    assert status == 403
    assert 'error="insufficient_scope"' in headers["www-authenticate"]

    status, headers, _ = get(asgi, m2m_issuer.token(sub="svc-a@clients", scopes=["read:orders"], expires_in=-60))
    assert status == 401 and 'error="invalid_token"' in headers["www-authenticate"]

    status, headers, _ = get(asgi)
    assert status == 401 and headers["www-authenticate"].startswith("Bearer ")

    Client.objects.create(client_id="svc-b")  # registered, no grant for "orders"
    status, _, _ = get(asgi, m2m_issuer.token(sub="svc-b@clients", scopes=["read:orders"]))
    assert status == 403


def test_a_revocation_reload_happens_off_the_event_loop(asgi, m2m_issuer):
    client = Client.objects.create(client_id="svc-a")
    client.grants.create(resource="orders")
    token = m2m_issuer.token(sub="svc-a@clients", scopes=["read:orders"])
    assert get(asgi, token)[0] == 200
    Client.objects.filter(client_id="svc-a").deactivate()  # the next request reloads revocation state
    status, headers, _ = get(asgi, token)
    assert status == 401 and 'error="invalid_token"' in headers["www-authenticate"]


def test_a_cold_jwks_fetch_does_not_block_the_event_loop(asgi, m2m_issuer, m2m_jwks_server):
    Client.objects.create(client_id="svc-a").grants.create(resource="orders")
    token = m2m_issuer.token(sub="svc-a@clients", scopes=["read:orders"])
    m2m_jwks_server.mode, m2m_jwks_server.delay = "slow", 0.5

    async def request_while_ticking():
        ticks = 0
        request = asyncio.ensure_future(asgi_get(asgi, "/async/orders/", token))
        while not request.done() and ticks < 2000:  # bounded: at most ~20 s of 10 ms ticks
            await asyncio.sleep(0.01)
            ticks += 1
        return await request, ticks

    (status, _, _), ticks = async_to_sync(request_while_ticking)()
    assert status == 200
    assert m2m_jwks_server.jwks_requests == 1
    # The fetch took at least 0.5 s; had it run on the event loop, the ticker could not have run.
    assert ticks >= 20, ticks
