"""M2MJWTAuthentication through DRF's real request cycle: headers, RFC 6750 challenges, never a 500."""

import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from rest_framework.test import APIClient, APIRequestFactory

from drf_m2m_auth.principal import AccessToken, ServiceClient, issuer_tag
from drf_m2m_auth.testing import FakeIssuer, JWKSServer

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]


@pytest.fixture
def api():
    return APIClient()


def bearer(token, scheme="Bearer"):
    return {"HTTP_AUTHORIZATION": f"{scheme} {token}"}


def challenge(response):
    return response.headers.get("WWW-Authenticate", "")


def test_valid_token(api, m2m_issuer):
    response = api.get("/echo/", **bearer(m2m_issuer.token(sub="svc-a@clients")))
    assert response.status_code == 200, response.content
    pk = f"svc-a@{issuer_tag(m2m_issuer.issuer)}"  # the issuer is part of a client's identity
    assert response.json() == {"client_id": "svc-a", "pk": pk, "scopes": ["read:data"], "sub": "svc-a@clients"}


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_scheme_is_case_insensitive(api, m2m_issuer, scheme):
    assert api.get("/echo/", **bearer(m2m_issuer.token(), scheme)).status_code == 200


def test_no_credentials_is_401_without_error_code(api, m2m_issuer):
    response = api.get("/echo/")
    assert response.status_code == 401
    assert challenge(response) == 'Bearer realm="api"'


def test_realm_setting(api, m2m_issuer, settings):
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "REALM": 'orders "api"'}
    assert challenge(api.get("/echo/")) == 'Bearer realm="orders \\"api\\""'


def test_invalid_token_is_401_invalid_token(api, m2m_issuer):
    response = api.get("/echo/", **bearer(m2m_issuer.token(expires_in=-5)))
    assert response.status_code == 401
    assert challenge(response) == (
        'Bearer realm="api", error="invalid_token", error_description="The token has expired."'
    )
    assert response.json()["detail"] == "The token has expired."


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer  "])
def test_malformed_bearer_header_is_400_invalid_request(api, m2m_issuer, header):
    response = api.get("/echo/", HTTP_AUTHORIZATION=header)
    if header.split() == ["Bearer"]:
        assert response.status_code == 400
        assert 'error="invalid_request"' in challenge(response)
    else:
        assert response.status_code == 400


def test_other_scheme_returns_none_so_others_may_run(api, m2m_issuer, django_user_model):
    django_user_model.objects.create_user("alice", password="pw")
    response = api.get("/echo-basic/", HTTP_AUTHORIZATION="Basic YWxpY2U6cHc=")  # alice:pw
    # Basic authenticated a Django user, who has no token scopes: HasScopes denies with 403
    assert response.status_code == 403
    assert api.get("/echo/", HTTP_AUTHORIZATION="Basic YWxpY2U6cHc=").status_code == 401


def test_token_in_query_string_or_body_is_ignored(api, m2m_issuer):
    token = m2m_issuer.token()
    assert api.get(f"/echo/?access_token={token}").status_code == 401
    assert api.post("/echo/", {"access_token": token}).status_code == 401


def test_one_megabyte_token(api, m2m_issuer):
    response = api.get("/echo/", **bearer("a" * 1024 * 1024))
    assert response.status_code == 401
    assert "too large" in challenge(response)


def test_non_ascii_token(api, m2m_issuer):
    response = api.get("/echo/", **bearer("é.é.é"))
    assert response.status_code == 401 and 'error="invalid_token"' in challenge(response)


def test_wrong_audience_and_issuer(api, m2m_issuer):
    for token in (m2m_issuer.token(aud="https://other"), m2m_issuer.token(iss="https://evil/")):
        response = api.get("/echo/", **bearer(token))
        assert response.status_code == 401 and 'error="invalid_token"' in challenge(response)


def test_issuer_down_at_cold_start_is_503_with_retry_after(api, m2m_issuer, m2m_jwks_server):
    m2m_jwks_server.mode = "down"
    response = api.get("/echo/", **bearer(m2m_issuer.token()))
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1


def test_unknown_kid_is_401(api, m2m_issuer):
    response = api.get("/echo/", **bearer(m2m_issuer.token(kid="nope")))
    assert response.status_code == 401 and "key id" in challenge(response)


def test_discovery_by_default(api, settings):
    with JWKSServer(FakeIssuer(audience="https://api.example")) as server:
        settings.DRF_M2M_AUTH = {"ISSUER": server.fake.issuer, "AUDIENCE": "https://api.example"}
        assert api.get("/echo/", **bearer(server.fake.token())).status_code == 200
        assert server.discovery_requests == 1


def test_signals(api, m2m_issuer):
    from drf_m2m_auth.signals import token_accepted, token_rejected

    seen = []
    token_accepted.connect(
        lambda sender, token, **kw: seen.append(("ok", token.client_id)), weak=False, dispatch_uid="t-accept"
    )
    token_rejected.connect(
        lambda sender, reason, **kw: seen.append(("no", reason)), weak=False, dispatch_uid="t-reject"
    )
    try:
        api.get("/echo/", **bearer(m2m_issuer.token(sub="x@clients")))
        api.get("/echo/", **bearer(m2m_issuer.token(expires_in=-1)))
    finally:
        token_accepted.disconnect(dispatch_uid="t-accept")
        token_rejected.disconnect(dispatch_uid="t-reject")
    assert seen == [("ok", "x"), ("no", "expired")]


def test_rejections_never_log_the_token(api, m2m_issuer, caplog):
    token = m2m_issuer.token(expires_in=-1)
    with caplog.at_level("DEBUG"):
        api.get("/echo/", **bearer(token))
    assert token.split(".")[2] not in caplog.text and token not in caplog.text


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.one_of(
        st.text(max_size=300),
        st.text(max_size=300).map(lambda s: "Bearer " + s),
        st.lists(
            st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=.+/ ", max_size=80),
            min_size=1,
            max_size=4,
        ).map(lambda p: "Bearer " + ".".join(p)),
    )
)
def test_arbitrary_authorization_headers_never_500(m2m_issuer, header):
    from tests.views import Echo

    header = header.replace("\x00", "")
    request = APIRequestFactory().get("/echo/", HTTP_AUTHORIZATION=header)
    response = Echo.as_view()(request)
    assert response.status_code in (200, 400, 401, 403, 503)
    if response.status_code == 401:
        assert challenge(response).startswith('Bearer realm="api"')


def test_principal_shapes(m2m_issuer):
    from tests.views import Echo

    request = APIRequestFactory().get("/echo/", **bearer(m2m_issuer.token(sub="svc-a@clients", azp="svc-a")))
    seen = {}

    class Probe(Echo):
        def get(self, request):
            seen["user"], seen["auth"] = request.user, request.auth
            return super().get(request)

    assert Probe.as_view()(request).status_code == 200
    user, auth = seen["user"], seen["auth"]
    assert isinstance(user, ServiceClient) and isinstance(auth, AccessToken)
    assert (
        user.is_authenticated
        and user.pk == f"svc-a@{issuer_tag(m2m_issuer.issuer)}"
        and user.issuer == auth.issuer == m2m_issuer.issuer
        and user == ServiceClient("svc-a", subject="", scopes=frozenset(), claims={}, issuer=m2m_issuer.issuer)
        and user != ServiceClient("svc-a", subject="", scopes=frozenset(), claims={}, issuer="https://other.example/")
    )
    assert auth.client_id == "svc-a" and auth.jti


def test_importable_before_django_setup():
    """The DRF glue imports without django.setup() (no models at import); the pure core imports no Django."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "testproject.settings", "PYTHONPATH": os.getcwd()}
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, drf_m2m_auth.authentication, drf_m2m_auth.permissions; "
            "assert 'drf_m2m_auth.models' not in sys.modules",
        ],
        check=True,
        env=env,
    )
    pure = (
        "import sys, drf_m2m_auth.errors, drf_m2m_auth.scopes, drf_m2m_auth.principal, drf_m2m_auth.jwks, "
        "drf_m2m_auth.tokens, drf_m2m_auth.trust, drf_m2m_auth.issuers, drf_m2m_auth.presets, drf_m2m_auth.validation; "
        "assert 'django' not in sys.modules and 'rest_framework' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", pure], check=True, env={**env, "DJANGO_SETTINGS_MODULE": ""})


def test_a_failing_signal_receiver_changes_nothing(api, m2m_issuer, caplog):
    from drf_m2m_auth.signals import token_accepted, token_rejected

    def broken(**kwargs):
        raise RuntimeError("metrics backend down")

    token_accepted.connect(broken, weak=False, dispatch_uid="t-broken-a")
    token_rejected.connect(broken, weak=False, dispatch_uid="t-broken-r")
    try:
        assert api.get("/echo/", **bearer(m2m_issuer.token())).status_code == 200
        assert api.get("/echo/", **bearer(m2m_issuer.token(expires_in=-1))).status_code == 401
    finally:
        token_accepted.disconnect(dispatch_uid="t-broken-a")
        token_rejected.disconnect(dispatch_uid="t-broken-r")
    assert "receiver" in caplog.text and "RuntimeError" in caplog.text


# --- DPOP_FORWARDED_HEADERS: the proxy must set both headers, the host must be allowed ---------------


@pytest.fixture
def behind_proxy(m2m_issuer, settings):
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "DPOP_FORWARDED_HEADERS": True, "TRUSTED_PROXIES": ["10.0.0.0/8"]}
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "api.example.com"]
    return m2m_issuer


def dpop_get(api, issuer, url, **extra):
    from drf_m2m_auth.dpop_key import DPoPKey

    key = DPoPKey()
    token = issuer.token(sub="svc-a@clients", cnf={"jkt": key.thumbprint})
    proof = key.proof("GET", url, access_token=token)
    return api.get("/echo/", HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=proof, REMOTE_ADDR="10.1.2.3", **extra)


def test_forwarded_origin_from_a_trusted_proxy(api, behind_proxy):
    headers = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "api.example.com"}
    assert dpop_get(api, behind_proxy, "https://api.example.com/echo/", **headers).status_code == 200


@pytest.mark.parametrize(
    "headers,missing",
    [
        ({"HTTP_X_FORWARDED_PROTO": "http"}, "X-Forwarded-Host"),
        ({"HTTP_X_FORWARDED_HOST": "testserver"}, "X-Forwarded-Proto"),
        ({}, "X-Forwarded-Proto and X-Forwarded-Host"),
    ],
)
def test_a_trusted_proxy_that_omits_a_forwarded_header_is_refused(api, behind_proxy, headers, missing):
    # Before: the URL fell back to Django's scheme and Host, which the client chose through the proxy.
    response = dpop_get(api, behind_proxy, "http://testserver/echo/", **headers)
    assert response.status_code == 401
    assert 'error="invalid_dpop_proof"' in challenge(response)
    assert f"The trusted proxy sent no {missing}" in response.json()["detail"]


@pytest.mark.parametrize(
    "proto,host", [("https", "evil.example"), ("ftp", "api.example.com"), ("https", "api.example.com/x@evil")]
)
def test_a_forwarded_origin_must_be_an_allowed_host(api, behind_proxy, proto, host):
    headers = {"HTTP_X_FORWARDED_PROTO": proto, "HTTP_X_FORWARDED_HOST": host}
    response = dpop_get(api, behind_proxy, f"{proto}://{host}/echo/", **headers)
    assert response.status_code == 401 and 'error="invalid_dpop_proof"' in challenge(response)
    assert "not an allowed origin" in response.json()["detail"]


# --- 503s: one ServiceUnavailable base, each outage with its own reason -----------------------------


def test_every_service_outage_is_a_503_with_retry_after_and_its_own_reason():
    from drf_m2m_auth.errors import (
        ConfigurationInvalid,
        KeysUnavailable,
        RevocationUnavailable,
        ServiceUnavailable,
    )
    from drf_m2m_auth.exceptions import to_api_exception

    cases = [
        (KeysUnavailable("No signing keys.", retry_after=7), "keys_unavailable", 7),
        (RevocationUnavailable(), "revocation_unavailable", 2),
        (ConfigurationInvalid("misconfigured"), "settings_invalid", 30),
    ]
    for error, reason, wait in cases:
        assert isinstance(error, ServiceUnavailable) and error.reason == reason
        api_error = to_api_exception(error, "api")
        assert api_error.status_code == 503 and api_error.wait == wait
        assert api_error.detail == error.description and api_error.detail.code == "temporarily_unavailable"
    # a database outage is not a key outage
    assert not isinstance(RevocationUnavailable(), KeysUnavailable)
    assert RevocationUnavailable().description == "Revocation state is temporarily unavailable."


def test_a_revocation_outage_through_a_request_is_a_503_naming_the_database(api, m2m_issuer, monkeypatch):
    from drf_m2m_auth import revocation
    from drf_m2m_auth.errors import RevocationUnavailable

    def down(token):
        raise RevocationUnavailable()

    monkeypatch.setattr(revocation, "check", down)
    response = api.get("/echo/", **bearer(m2m_issuer.token()))
    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    assert response.json()["detail"] == "Revocation state is temporarily unavailable."
