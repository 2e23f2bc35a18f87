"""The local issuer binds a token to the DPoP key of a valid proof (RFC 9449 5), and refuses a bad proof."""

from __future__ import annotations

import base64
import json

import pytest
from django.test import Client

from drf_m2m_auth.dpop_key import DPoPKey
from testproject.issuer.models import Api, ClientGrant, OAuthClient

from .test_issuer import urlpatterns  # noqa: F401 -- the issuer alone, as test_issuer mounts it

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]
SECRET, AUD = "a-long-random-test-secret", "https://service-b.example"
TOKEN_URL = "http://127.0.0.1/issuer/oauth/token"


@pytest.fixture
def app():
    api = Api.objects.create(identifier=AUD, name="service-b", scopes="read:data", token_lifetime=600)
    client = OAuthClient(client_id="svc-a", name="service-a")
    client.set_secret(SECRET)
    client.save()
    ClientGrant.objects.create(client=client, api=api, scopes="read:data")
    return client


def ask(proof=None):
    headers = {"HTTP_DPOP": proof} if proof is not None else {}
    return Client(HTTP_HOST="127.0.0.1").post(
        "/issuer/oauth/token",
        {"grant_type": "client_credentials", "client_id": "svc-a", "client_secret": SECRET, "audience": AUD},
        **headers,
    )


def claims(token):
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def test_a_valid_proof_gets_a_dpop_bound_token(app):
    key = DPoPKey()
    body = ask(key.proof("POST", TOKEN_URL)).json()
    assert body["token_type"] == "DPoP"
    assert claims(body["access_token"])["cnf"] == {"jkt": key.thumbprint}


def test_without_a_proof_the_token_is_a_bearer_token(app):
    body = ask().json()
    assert body["token_type"] == "Bearer" and "cnf" not in claims(body["access_token"])


@pytest.mark.parametrize("bad", ["wrong-url", "wrong-method", "garbage"])
def test_an_invalid_proof_is_400_invalid_dpop_proof(app, bad):
    key = DPoPKey()
    proof = {
        "wrong-url": key.proof("POST", "http://127.0.0.1/other"),
        "wrong-method": key.proof("GET", TOKEN_URL),
        "garbage": "not.a.jwt",
    }[bad]
    response = ask(proof)
    assert response.status_code == 400 and response.json()["error"] == "invalid_dpop_proof"


def test_a_proof_is_good_for_one_token_request(app):
    proof = DPoPKey().proof("POST", TOKEN_URL)
    assert ask(proof).status_code == 200
    assert ask(proof).json()["error"] == "invalid_dpop_proof"
