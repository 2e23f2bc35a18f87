"""End to end over real HTTP: the issuer, service-b and service-a are separate processes on 127.0.0.1."""

from __future__ import annotations

import time

import pytest
import requests

from drf_m2m_auth.client import ClientCredentials
from drf_m2m_auth.token_endpoint import AccessDenied
from testproject.api import scenario as sc
from testproject.api.narration import decode_segment

from .e2e_support.cluster import PARTNER, SECRET, Cluster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # A short JWKS refresh cooldown so the emergency-rotation test need not wait 30 s.
    with Cluster(tmp_path_factory.mktemp("e2e"), service_b_env={"M2M_JWKS_REFRESH_COOLDOWN": "1"}) as running:
        yield running


def get(cluster, token):
    return requests.get(cluster.data_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def credentials(cluster, client_id, **kwargs):
    return ClientCredentials(cluster.token_url, client_id, SECRET, sc.SERVICE_B_AUDIENCE, **kwargs)


def test_discovery_names_the_issuer_service_b_trusts(cluster):
    doc = requests.get(cluster.issuer_url + ".well-known/openid-configuration", timeout=10).json()
    assert doc["issuer"] == cluster.issuer_url
    assert requests.get(doc["jwks_uri"], timeout=10).json()["keys"]


def test_service_a_process_reads_from_service_b_process(cluster):
    [seen] = cluster.service_a({})
    assert seen["token_error"] is None and seen["status"] == 200, seen
    assert [record["name"] for record in seen["body"]][:2] == ["temperature", "humidity"]


def test_writing_needs_write_data_and_a_writer_may(cluster):
    reader, writer = cluster.service_a({"method": "POST"}, {"client_id": "writer", "method": "POST"})
    assert reader["status"] == 403
    assert 'error="insufficient_scope"' in reader["www_authenticate"]
    assert 'scope="write:data"' in reader["www_authenticate"]
    assert writer["status"] == 201, writer
    assert writer["body"]["created_by"] == "writer"


def test_the_issuer_refuses_an_audience_without_grant_and_a_wrong_secret(cluster):
    denied, wrong = cluster.service_a({"audience": sc.BILLING_AUDIENCE}, {"secret": "not-the-secret"})
    assert denied["token_error"] == {"status": 403, "error": "access_denied", "type": "AccessDenied"}
    assert wrong["token_error"]["status"] == 401 and wrong["token_error"]["error"] == "invalid_client"


def test_a_token_for_another_api_is_refused_by_service_b(cluster):
    token = ClientCredentials(cluster.token_url, sc.SERVICE_A, SECRET, sc.REPORTS_AUDIENCE).token()
    response = get(cluster, token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_client_service_b_never_granted_is_forbidden(cluster):
    [seen] = cluster.service_a({"client_id": "stranger"})
    assert seen["token_error"] is None and seen["status"] == 403, seen
    assert "insufficient_scope" not in (seen["www_authenticate"] or "")


def test_an_expired_token_is_refused(cluster):
    token = cluster.issuer_ops.run(
        "issuer_token", sc.SERVICE_A, sc.SERVICE_B_AUDIENCE, "--scope", sc.READ, "--expired"
    ).strip()
    response = get(cluster, token)
    assert response.status_code == 401 and "expired" in response.headers["WWW-Authenticate"]


def test_revocation_by_the_operator_reaches_the_running_server(cluster):
    token = credentials(cluster, "revoked-later").token()
    assert get(cluster, token).status_code == 200
    # A fresh process, as an operator's; service-b trusts two issuers, so the client names its own.
    cluster.service_b.manage("m2m_revoke", "--client", "revoked-later", "--issuer", cluster.issuer_url)
    response = cluster.until(lambda: (r := get(cluster, token)).status_code == 401 and r, timeout=5)
    assert response is not False and "revoked" in response.headers["WWW-Authenticate"]
    time.sleep(1.1)  # iat has one-second resolution: a new token must be issued after the revocation
    assert get(cluster, credentials(cluster, "revoked-later").token()).status_code == 200


def test_a_client_deactivated_at_the_issuer_gets_no_token(cluster):
    assert get(cluster, credentials(cluster, "deactivated-later").token()).status_code == 200
    cluster.issuer_ops.run("issuer_client", "deactivate", "deactivated-later")
    [seen] = cluster.service_a({"client_id": "deactivated-later"})
    assert seen["token_error"]["status"] == 401 and seen["token_error"]["error"] == "invalid_client"


def test_a_second_tenant_is_a_second_real_issuer_with_its_own_keys(cluster):
    doc = requests.get(cluster.issuer_2_url + ".well-known/openid-configuration", timeout=10).json()
    assert doc["issuer"] == cluster.issuer_2_url != cluster.issuer_url
    kids_1 = {k["kid"] for k in requests.get(cluster.issuer_url + ".well-known/jwks.json", timeout=10).json()["keys"]}
    kids_2 = {k["kid"] for k in requests.get(doc["jwks_uri"], timeout=10).json()["keys"]}
    assert kids_2 and kids_1.isdisjoint(kids_2)


def test_service_b_verifies_the_second_tenants_token_with_that_tenants_keys(cluster):
    token = ClientCredentials(cluster.token_2_url, PARTNER, SECRET, sc.SERVICE_B_AUDIENCE).token()
    claims = decode_segment(token.split(".")[1])
    assert claims["iss"] == cluster.issuer_2_url
    response = get(cluster, token)
    # Authenticated (its issuer's keys verify it), but service-b never registered this client.
    assert response.status_code == 403, response.content
    assert "insufficient_scope" not in response.headers.get("WWW-Authenticate", "")
    out = cluster.service_b.manage("m2m_jwks", "--issuer", cluster.issuer_2_url, "--json").stdout
    assert decode_segment(token.split(".")[0])["kid"] in out
    # The first tenant does not know this client at all: no token.
    with pytest.raises(AccessDenied) as refused:
        ClientCredentials(cluster.token_url, PARTNER, SECRET, sc.SERVICE_B_AUDIENCE).token()
    assert refused.value.status == 401


def test_emergency_rotation_service_b_refetches_the_jwks_without_restart(cluster):
    # Last in this module: it withdraws the key every earlier token was signed with.
    old_token = credentials(cluster, sc.SERVICE_A).token()
    assert get(cluster, old_token).status_code == 200
    published = {
        key["kid"] for key in requests.get(cluster.issuer_url + ".well-known/jwks.json", timeout=10).json()["keys"]
    }
    cluster.issuer_ops.run("issuer_rotate_key", "--revoke-current")
    new_token = credentials(cluster, sc.SERVICE_A).token()
    pid = cluster.service_b.proc.pid
    assert cluster.until(lambda: get(cluster, new_token).status_code == 200, timeout=5), (
        "service-b never accepted the new key"
    )
    assert decode_segment(new_token.split(".")[0])["kid"] not in published  # it had to refetch
    assert cluster.service_b.proc.poll() is None and cluster.service_b.proc.pid == pid
    assert cluster.until(lambda: get(cluster, old_token).status_code == 401, timeout=5)
