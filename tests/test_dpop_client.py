"""The calling side with dpop=True: a proof to the token endpoint and on every API call, nonces retried."""

import json

import pytest
import requests

from drf_m2m_auth.client import ClientCredentials
from drf_m2m_auth.dpop import access_token_hash
from drf_m2m_auth.dpop_key import DPoPKey
from drf_m2m_auth.testing import FakeIssuer, generate_private_key

from .nginx_support.dpop_servers import DPoPResource, DPoPTokenEndpoint, _b64


def claims(jwt):
    return json.loads(_b64(jwt.split(".")[1]))


@pytest.fixture
def endpoint():
    with DPoPTokenEndpoint(FakeIssuer(), require_nonce=True) as server:
        yield server


@pytest.fixture
def resource():
    with DPoPResource(require_nonce=True) as server:
        yield server


def creds(endpoint, dpop=True, **kwargs):
    return ClientCredentials(endpoint.token_url, "svc-a", "secret", "https://api.example", dpop=dpop, **kwargs)


def test_token_request_carries_a_proof_and_retries_once_with_the_nonce(endpoint):
    c = creds(endpoint)
    token = c.token()
    assert [r["answer"] for r in endpoint.seen] == ["use_dpop_nonce", "token"]  # RFC 9449 8
    first, second = (claims(r["proof"]) for r in endpoint.seen)
    assert "nonce" not in first and second["nonce"] and first["jti"] != second["jti"]
    assert first["htm"] == "POST" and first["htu"] == endpoint.token_url and "ath" not in first
    assert claims(token)["cnf"]["jkt"] == endpoint.seen[1]["jkt"] == c._dpop.thumbprint
    c.token()
    assert len(endpoint.seen) == 2  # cached: no new token request


def test_every_api_call_sends_a_fresh_proof_with_ath_and_the_resource_nonce(endpoint, resource):
    c = creds(endpoint)
    urls = [resource.url + "/data/?page=1", resource.url + "/data/", resource.url + "/other"]
    statuses = [requests.get(url, auth=c.auth, timeout=10).status_code for url in urls]
    statuses.append(requests.post(resource.url + "/data/", json={"a": 1}, auth=c.auth, timeout=10).status_code)
    assert statuses == [200, 200, 200, 200]
    answers = [r["answer"] for r in resource.seen]
    assert answers == ["use_dpop_nonce", "ok", "ok", "ok", "ok"]  # one nonce round trip, then none
    proofs = [claims(r["proof"]) for r in resource.seen]
    assert len({p["jti"] for p in proofs}) == len(proofs)
    token = c.token()
    assert all(r["scheme"] == "DPoP" for r in resource.seen)
    assert all(p["ath"] == access_token_hash(token) for p in proofs)
    assert proofs[1]["htu"] == resource.url + "/data/" and proofs[-1]["htm"] == "POST"


def test_issuer_that_does_not_bind_gives_a_bearer_token(resource):
    class BearerOnly(DPoPTokenEndpoint):
        def handle(self, request, body):
            status, headers, payload = super().handle(request, body)
            if status == 200:
                payload["token_type"] = "Bearer"
            return status, headers, payload

    with BearerOnly(FakeIssuer(), require_nonce=False) as endpoint:
        c = creds(endpoint)
        response = requests.get(resource.url + "/x", auth=c.auth, timeout=10)
    assert resource.seen[-1]["scheme"] == "Bearer" and resource.seen[-1]["proof"] is None
    assert response.status_code == 401


def test_a_given_key_is_used_and_keeps_the_shared_cache_per_key(endpoint):
    private = generate_private_key("ES256")
    one, two = creds(endpoint, dpop=DPoPKey(private)), creds(endpoint, dpop=private)
    assert one._dpop.thumbprint == two._dpop.thumbprint
    assert one._identity == two._identity != creds(endpoint)._identity
    plain = ClientCredentials(endpoint.token_url, "svc-a", "secret", "https://api.example")
    assert plain._dpop is None and plain._identity != one._identity


def test_the_key_never_shows_in_reprs(endpoint):
    c = creds(endpoint)
    assert "d=" not in repr(c._dpop) and repr(c._dpop).startswith("<DPoPKey ES256 jkt=")
