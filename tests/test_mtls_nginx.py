"""End to end through a real nginx: TLS with client-certificate verification on 127.0.0.1, the verified
certificate forwarded to service-b (a real server process). Tokens bound to that certificate pass;
tokens bound to another one, requests without one, and forged headers fail. DPoP behind the same
proxy: htu from X-Forwarded-* of the trusted proxy, and the calling side with dpop=True."""

from __future__ import annotations

import http.client
import os
import ssl

import pytest
import requests

from drf_m2m_auth.client import ClientCredentials
from drf_m2m_auth.dpop_key import DPoPKey
from drf_m2m_auth.testing import JWKSServer

from .nginx_support.certs import TestCA
from .nginx_support.dpop_servers import DPoPTokenEndpoint
from .nginx_support.harness import Nginx, ServiceB, find_nginx

pytestmark = pytest.mark.slow
NGINX = find_nginx()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if NGINX is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed, and CI must run the nginx end-to-end test (.ci/run installs it)")
        pytest.skip("nginx is not installed (apt-get install nginx); CI installs it and runs this test")
    tmp = tmp_path_factory.mktemp("nginx")
    ca = TestCA()
    ca.issued.write(tmp, "ca")
    ca.issue("127.0.0.1", client=False).write(tmp, "server")
    certs = {name: ca.issue(name, client=True) for name in ("svc-a", "svc-c")}
    paths = {name: issued.write(tmp, name) for name, issued in certs.items()}
    stranger = TestCA("another CA").issue("svc-a", client=True)  # nginx must not accept this one
    paths["stranger"] = stranger.write(tmp, "stranger")
    jwks = JWKSServer()
    m2m = jwks.fake.settings(
        JWKS_URL=jwks.jwks_url,
        MTLS_CERT_HEADER="X-SSL-Client-Cert",
        TRUSTED_PROXIES=["127.0.0.1"],
        DPOP_FORWARDED_HEADERS=True,
        LEEWAY=5,
    )
    service_b = nginx = None
    try:
        service_b = ServiceB(tmp, m2m)
        nginx = Nginx(NGINX, tmp, service_b.port)
        yield {
            "nginx": nginx,
            "service_b": service_b,
            "issuer": jwks.fake,
            "certs": certs,
            "paths": paths,
            "ca": str(tmp / "ca.crt"),
            "tmp": tmp,
        }
    finally:
        if nginx is not None:
            nginx.stop()
        if service_b is not None:
            service_b.stop()
        jwks.stop()


def call(stack, token, *, cert=None, scheme="Bearer", headers=None, path="/echo/"):
    cert_files = stack["paths"][cert] if cert else None
    return requests.get(
        stack["nginx"].url + path,
        cert=cert_files,
        verify=stack["ca"],
        timeout=15,
        headers={"Authorization": f"{scheme} {token}", **(headers or {})},
    )


def bound_to(stack, name):
    return stack["issuer"].token(sub=f"{name}@clients", cnf={"x5t#S256": stack["certs"][name].thumbprint})


def test_token_bound_to_the_presented_certificate_passes(stack):
    response = call(stack, bound_to(stack, "svc-a"), cert="svc-a")
    assert response.status_code == 200, (response.text, stack["service_b"].output())
    assert response.json()["client_id"] == "svc-a"


def test_token_bound_to_another_certificate_fails(stack):
    # svc-c holds a perfectly valid certificate from the same CA, and svc-a's stolen token
    response = call(stack, bound_to(stack, "svc-a"), cert="svc-c")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert "another client certificate" in response.headers["WWW-Authenticate"]


def test_bound_token_without_a_client_certificate_fails(stack):
    response = call(stack, bound_to(stack, "svc-a"))
    assert response.status_code == 401 and "none was presented" in response.headers["WWW-Authenticate"]


def test_forged_certificate_header_through_nginx_is_overwritten(stack):
    # nginx sets X-SSL-Client-Cert itself: a client without a certificate cannot smuggle one in.
    forged = {"X-SSL-Client-Cert": stack["certs"]["svc-a"].escaped_pem}
    assert call(stack, bound_to(stack, "svc-a"), headers=forged).status_code == 401


def test_forged_certificate_header_straight_to_service_b_is_not_believed(stack):
    # Around the proxy, from 127.0.0.2 (not in TRUSTED_PROXIES): the header proves nothing.
    conn = http.client.HTTPConnection("127.0.0.1", stack["service_b"].port, timeout=15, source_address=("127.0.0.2", 0))
    try:
        conn.request(
            "GET",
            "/echo/",
            headers={
                "Authorization": f"Bearer {bound_to(stack, 'svc-a')}",
                "X-SSL-Client-Cert": stack["certs"]["svc-a"].escaped_pem,
            },
        )
        response = conn.getresponse()
        assert response.status == 401
        assert "none was presented" in response.getheader("WWW-Authenticate")
    finally:
        conn.close()


def test_certificate_from_an_untrusted_ca_is_refused_by_nginx(stack):
    response = call(stack, bound_to(stack, "svc-a"), cert="stranger")
    assert response.status_code == 400  # nginx: "The SSL certificate error"; never reaches service-b


def test_unbound_tokens_pass_with_or_without_a_certificate(stack):
    token = stack["issuer"].token(sub="svc-a@clients")
    assert call(stack, token).status_code == 200
    assert call(stack, token, cert="svc-c").status_code == 200


def test_dpop_behind_the_proxy_uses_the_public_url(stack):
    key = DPoPKey()
    token = stack["issuer"].token(sub="svc-a@clients", cnf={"jkt": key.thumbprint})
    public = stack["nginx"].url + "/echo/"
    ok = call(stack, token, scheme="DPoP", headers={"DPoP": key.proof("GET", public, access_token=token)})
    assert ok.status_code == 200, ok.headers.get("WWW-Authenticate")
    internal = f"http://127.0.0.1:{stack['service_b'].port}/echo/"  # what service-b itself sees
    wrong = call(stack, token, scheme="DPoP", headers={"DPoP": key.proof("GET", internal, access_token=token)})
    assert wrong.status_code == 401 and "(htu)" in wrong.headers["WWW-Authenticate"]
    thief = call(stack, token, scheme="DPoP", headers={"DPoP": DPoPKey().proof("GET", public, access_token=token)})
    assert thief.status_code == 401


def test_two_dpop_headers_through_nginx_are_refused(stack):
    # RFC 9449 4.3 (1) over the wire: nginx passes both fields, the WSGI server joins them with ",".
    key = DPoPKey()
    token = stack["issuer"].token(sub="svc-a@clients", cnf={"jkt": key.thumbprint})
    public = stack["nginx"].url + "/echo/"
    context = ssl.create_default_context(cafile=stack["ca"])
    conn = http.client.HTTPSConnection("127.0.0.1", stack["nginx"].port, context=context, timeout=15)
    try:
        conn.putrequest("GET", "/echo/")
        conn.putheader("Authorization", f"DPoP {token}")
        for _ in range(2):
            conn.putheader("DPoP", key.proof("GET", public, access_token=token))
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 401
        assert "more than one DPoP header" in response.getheader("WWW-Authenticate")
    finally:
        conn.close()


def test_client_with_dpop_true_end_to_end(stack):
    with DPoPTokenEndpoint(stack["issuer"], require_nonce=True) as endpoint:
        creds = ClientCredentials(endpoint.token_url, "svc-a", "secret", stack["issuer"].audience, dpop=True)
        tls = {"verify": stack["ca"], "cert": stack["paths"]["svc-a"], "timeout": 15}
        first = requests.get(stack["nginx"].url + "/echo/?n=1", auth=creds.auth, **tls)
        second = requests.get(stack["nginx"].url + "/echo/?n=2", auth=creds.auth, **tls)
    assert (first.status_code, second.status_code) == (200, 200), first.headers.get("WWW-Authenticate")
    assert first.request.headers["Authorization"].startswith("DPoP ")
    assert first.request.headers["DPoP"] != second.request.headers["DPoP"]
