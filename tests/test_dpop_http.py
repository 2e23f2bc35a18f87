"""DPoP through DRF's request cycle: schemes, challenges (RFC 9449 7.1, 7.2), nonces, proxies, settings."""

import time

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from rest_framework.test import APIClient, APIRequestFactory

from drf_m2m_auth.dpop_key import DPoPKey

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]
URL = "http://testserver/echo/"
ALGS = 'algs="ES256 ES384 ES512 PS256 RS256 EdDSA"'


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def dpop_key():
    return DPoPKey()


@pytest.fixture
def bound(m2m_issuer, dpop_key):
    """A DPoP-bound access token (cnf.jkt = the client's key thumbprint)."""
    return m2m_issuer.token(sub="svc-a@clients", cnf={"jkt": dpop_key.thumbprint})


def with_settings(settings, **changes):
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, **changes}


def send(api, token, key, *, method="get", url=URL, path="/echo/", scheme="DPoP", nonce=None, **extra):
    headers = {"HTTP_AUTHORIZATION": f"{scheme} {token}"}
    if key is not None:
        headers["HTTP_DPOP"] = key.proof(method.upper(), url, access_token=token, nonce=nonce)
    return getattr(api, method)(path, **headers, **extra)


def challenge(response):
    return response.headers.get("WWW-Authenticate", "")


def test_bound_token_with_its_proof_is_accepted(api, bound, dpop_key):
    response = send(api, bound, dpop_key)
    assert response.status_code == 200, response.content
    assert response.json()["client_id"] == "svc-a"
    # a second request: the token comes from the verified-token cache, the proof is still checked
    assert send(api, bound, dpop_key).status_code == 200
    assert send(api, bound, DPoPKey()).status_code == 401


def test_stolen_bound_token_replayed_without_the_key_is_401(api, bound):
    thief = DPoPKey()  # the thief signs a perfect proof, with the wrong key
    response = send(api, bound, thief)
    assert response.status_code == 401
    assert challenge(response) == (
        'Bearer realm="api", DPoP realm="api", error="invalid_token", '
        "error_description=\"Invalid DPoP key binding: the proof's key is not the "
        "token's (cnf.jkt).\", " + ALGS
    )


def test_bound_token_sent_as_bearer_is_refused(api, bound):
    # RFC 9449 7.2: no downgrade; figure 18's pair: the Bearer challenge carries the error.
    response = api.get("/echo/", HTTP_AUTHORIZATION=f"Bearer {bound}")
    assert response.status_code == 401
    assert challenge(response) == (
        'Bearer realm="api", error="invalid_token", error_description="The token is '
        'DPoP-bound: send it with the DPoP scheme and a DPoP proof.", DPoP realm="api", ' + ALGS
    )


def test_bound_token_as_bearer_is_refused_even_with_dpop_disabled(api, bound, settings):
    with_settings(settings, DPOP="disabled")
    response = api.get("/echo/", HTTP_AUTHORIZATION=f"Bearer {bound}")
    assert response.status_code == 401 and challenge(response).startswith('Bearer realm="api", error="invalid_token"')


def test_missing_proof_is_invalid_dpop_proof(api, bound):
    response = send(api, bound, None)
    assert response.status_code == 401
    assert challenge(response) == (
        'Bearer realm="api", DPoP realm="api", error="invalid_dpop_proof", '
        'error_description="The request has no DPoP proof.", ' + ALGS
    )


def test_proof_for_another_url_or_method(api, bound, dpop_key):
    assert 'error="invalid_dpop_proof"' in challenge(send(api, bound, dpop_key, url="http://testserver/other/"))
    assert send(api, bound, dpop_key, method="post", url=URL).status_code == 200
    response = api.post(
        "/echo/", HTTP_AUTHORIZATION=f"DPoP {bound}", HTTP_DPOP=dpop_key.proof("GET", URL, access_token=bound)
    )
    assert response.status_code == 401 and "(htm)" in challenge(response)


def test_request_query_string_is_ignored_by_htu(api, bound, dpop_key):
    assert send(api, bound, dpop_key, path="/echo/?page=2&x=%20y").status_code == 200


def test_same_proof_twice_is_a_replay(api, bound, dpop_key):
    proof = dpop_key.proof("GET", URL, access_token=bound)
    headers = {"HTTP_AUTHORIZATION": f"DPoP {bound}", "HTTP_DPOP": proof}
    assert api.get("/echo/", **headers).status_code == 200
    response = api.get("/echo/", **headers)
    assert response.status_code == 401 and "used before" in challenge(response)


def test_proof_for_another_token_is_refused(api, m2m_issuer, bound, dpop_key):
    other = m2m_issuer.token(cnf={"jkt": dpop_key.thumbprint})
    response = api.get(
        "/echo/", HTTP_AUTHORIZATION=f"DPoP {bound}", HTTP_DPOP=dpop_key.proof("GET", URL, access_token=other)
    )
    assert response.status_code == 401 and "(ath)" in challenge(response)


def test_unbound_token_with_dpop_scheme_is_refused(api, m2m_issuer, dpop_key):
    token = m2m_issuer.token()
    response = send(api, token, dpop_key)
    assert response.status_code == 401 and "cnf.jkt" in challenge(response)


def test_plain_bearer_unchanged_when_allowed(api, m2m_issuer):
    assert api.get("/echo/", HTTP_AUTHORIZATION=f"Bearer {m2m_issuer.token()}").status_code == 200
    assert challenge(api.get("/echo/")) == 'Bearer realm="api"'


def test_required_refuses_plain_bearer_and_offers_only_dpop(api, m2m_issuer, bound, dpop_key, settings):
    with_settings(settings, DPOP="required", DPOP_ALGORITHMS=["ES256", "PS256"])
    response = api.get("/echo/", HTTP_AUTHORIZATION=f"Bearer {m2m_issuer.token()}")
    assert response.status_code == 401
    assert challenge(response) == (
        'DPoP realm="api", error="invalid_token", error_description="This API accepts '
        'only DPoP-bound access tokens.", algs="ES256 PS256"'
    )
    assert challenge(api.get("/echo/")) == 'DPoP realm="api", algs="ES256 PS256"'  # RFC 9449 figure 15
    assert send(api, bound, dpop_key).status_code == 200


def test_disabled_leaves_the_dpop_scheme_to_others(api, bound, dpop_key, settings):
    with_settings(settings, DPOP="disabled")
    response = send(api, bound, dpop_key)
    assert response.status_code == 401 and challenge(response) == 'Bearer realm="api"'


@pytest.mark.parametrize("header", ["DPoP", "DPoP a b"])
def test_malformed_dpop_authorization_is_400(api, m2m_issuer, header):
    response = api.get("/echo/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 400
    assert challenge(response).startswith('DPoP realm="api", error="invalid_request"')


def test_server_nonce_round_trip(api, bound, dpop_key, settings):
    with_settings(settings, DPOP_NONCE=True)
    first = send(api, bound, dpop_key)
    assert first.status_code == 401
    assert 'error="use_dpop_nonce"' in challenge(first) and challenge(first).startswith('Bearer realm="api", DPoP')
    nonce = first.headers["DPoP-Nonce"]
    second = send(api, bound, dpop_key, nonce=nonce)
    assert second.status_code == 200, challenge(second)
    assert "DPoP-Nonce" not in second.headers  # still fresh: no new nonce yet
    stale = send(api, bound, dpop_key, nonce="not-a-nonce-from-us")
    assert stale.status_code == 401 and stale.headers["DPoP-Nonce"] != "not-a-nonce-from-us"


def test_forwarded_headers_only_from_trusted_proxies(api, bound, dpop_key, settings):
    public = "https://api.example.com/echo/"
    forwarded = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "evil.example, api.example.com"}
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "api.example.com"]  # a forwarded host must be allowed
    with_settings(settings, DPOP_FORWARDED_HEADERS=True, TRUSTED_PROXIES=["10.0.0.0/8"])
    assert send(api, bound, dpop_key, url=public, REMOTE_ADDR="10.1.2.3", **forwarded).status_code == 200
    # the same headers from anyone else are ignored: the URL is Django's own (http://testserver)
    assert send(api, bound, dpop_key, url=public, REMOTE_ADDR="192.0.2.1", **forwarded).status_code == 401
    assert send(api, bound, dpop_key, REMOTE_ADDR="192.0.2.1", **forwarded).status_code == 200
    with_settings(settings, DPOP_FORWARDED_HEADERS=False, TRUSTED_PROXIES=["10.0.0.0/8"])
    assert send(api, bound, dpop_key, url=public, REMOTE_ADDR="10.1.2.3", **forwarded).status_code == 401


def test_rejections_never_log_the_token_or_proof(api, bound, caplog):
    thief = DPoPKey()
    with caplog.at_level("DEBUG"):
        send(api, bound, thief)
    assert bound not in caplog.text and bound.split(".")[2] not in caplog.text


def test_cnf_without_a_method_we_can_check_is_refused(api, m2m_issuer):
    for cnf in ({"jwk": {"kty": "EC"}}, "jkt", {"jkt": 5}):
        response = api.get("/echo/", HTTP_AUTHORIZATION=f"Bearer {m2m_issuer.token(cnf=cnf)}")
        assert response.status_code == 401 and "cnf" in challenge(response)


def test_request_auth_exposes_the_binding(m2m_issuer, bound, dpop_key):
    from rest_framework.test import APIRequestFactory

    from tests.views import Echo

    seen = {}

    class Probe(Echo):
        def get(self, request):
            seen["auth"] = request.auth
            return super().get(request)

    request = APIRequestFactory().get(
        "/echo/", HTTP_AUTHORIZATION=f"DPoP {bound}", HTTP_DPOP=dpop_key.proof("GET", URL, access_token=bound)
    )
    assert Probe.as_view()(request).status_code == 200
    assert seen["auth"].jkt == dpop_key.thumbprint and seen["auth"].x5t_s256 is None


def test_a_nonce_past_half_its_life_is_renewed_on_success(api, bound, dpop_key, settings):
    from drf_m2m_auth.dpop import NonceSource

    with_settings(settings, DPOP_NONCE=True, DPOP_NONCE_LIFETIME=300)
    aged = NonceSource(settings.SECRET_KEY.encode(), 300, clock=lambda: time.time() - 200).issue()
    response = send(api, bound, dpop_key, nonce=aged)
    assert response.status_code == 200 and response.headers["DPoP-Nonce"] != aged  # RFC 9449 8.2


B64URLISH = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=,"


@hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    proof=st.one_of(
        st.text(max_size=200), st.lists(st.text(alphabet=B64URLISH, max_size=60), min_size=1, max_size=4).map(".".join)
    )
)
def test_arbitrary_dpop_headers_never_500(bound, proof):
    from tests.views import Echo

    request = APIRequestFactory().get("/echo/", HTTP_AUTHORIZATION=f"DPoP {bound}", HTTP_DPOP=proof.replace("\x00", ""))
    response = Echo.as_view()(request)
    assert response.status_code == 401
    assert 'error="invalid_dpop_proof"' in response.headers["WWW-Authenticate"]
