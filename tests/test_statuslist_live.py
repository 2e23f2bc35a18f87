"""Revoking at the issuer, over real HTTP: the local issuer and an API in a live server on 127.0.0.1."""

from __future__ import annotations

import io
import time

import pytest
import requests
from django.core.management import call_command
from django.urls import include, path

from testproject.issuer.models import Api, ClientGrant, OAuthClient

from . import views

urlpatterns = [path("issuer/", include("testproject.issuer.urls")), path("echo/", views.Echo.as_view())]

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

AUD, SECRET = "https://service-b.example", "a-long-random-test-secret"


@pytest.fixture
def issuer_and_api(live_server, settings):
    base = live_server.url.replace("localhost", "127.0.0.1")
    settings.DRF_M2M_AUTH = {"ISSUER": base + "/issuer/", "AUDIENCE": AUD, "STATUS_LIST_MIN_TTL": 1}
    settings.LOCAL_ISSUER_STATUS_LIST_TTL = 1
    api = Api.objects.create(identifier=AUD, name="service-b", scopes="read:data", token_lifetime=600)
    app = OAuthClient(client_id="svc-a", name="service-a")
    app.set_secret(SECRET)
    app.save()
    ClientGrant.objects.create(client=app, api=api, scopes="read:data")
    return base


def new_token(base):
    response = requests.post(
        base + "/issuer/oauth/token",
        data={"grant_type": "client_credentials", "audience": AUD},
        auth=("svc-a", SECRET),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def call(base, token):
    return requests.get(base + "/echo/", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_a_token_revoked_at_the_issuer_is_refused_within_the_lists_ttl(issuer_and_api):
    base = issuer_and_api
    token, other = new_token(base), new_token(base)
    assert call(base, token).status_code == 200 and call(base, other).status_code == 200
    call_command("issuer_token_status", token, "--revoke", stdout=io.StringIO())
    revoked_at, refused = time.monotonic(), None
    while time.monotonic() - revoked_at < 10:  # bounded: the list's ttl is 1 s
        response = call(base, token)
        if response.status_code == 401:
            refused = time.monotonic() - revoked_at
            break
        assert response.status_code == 200
        time.sleep(0.05)
    assert refused is not None, "the revoked token was still accepted after 10 s"
    assert "revoked by its issuer" in response.json()["detail"]
    print(f"issuer action -> 401: {refused:.2f} s")
    assert call(base, other).status_code == 200  # only that token
    assert call(base, new_token(base)).status_code == 200  # a renewed token works at once
