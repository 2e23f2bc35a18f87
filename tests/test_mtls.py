"""Certificate-bound tokens (RFC 8705 3): cnf x5t#S256 against the certificate a trusted proxy forwards."""

import base64

import pytest
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st
from rest_framework.test import APIClient

from drf_m2m_auth.errors import InvalidToken
from drf_m2m_auth.mtls import TrustedProxies, certificate_der, check_certificate_binding

from .nginx_support.certs import TestCA

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]
PROXY = "10.0.0.7"


@pytest.fixture(scope="module")
def pki():
    ca = TestCA()
    return {"a": ca.issue("svc-a", client=True), "b": ca.issue("svc-b", client=True)}


@pytest.fixture
def mtls(m2m_issuer, settings):
    settings.DRF_M2M_AUTH = {
        **settings.DRF_M2M_AUTH,
        "MTLS_CERT_HEADER": "X-SSL-Client-Cert",
        "TRUSTED_PROXIES": ["10.0.0.0/24", "::1"],
    }
    return m2m_issuer


def get(token, cert=None, remote=PROXY, scheme="Bearer"):
    extra = {"HTTP_AUTHORIZATION": f"{scheme} {token}", "REMOTE_ADDR": remote}
    if cert is not None:
        extra["HTTP_X_SSL_CLIENT_CERT"] = cert
    return APIClient().get("/echo/", **extra)


def challenge(response):
    return response.headers.get("WWW-Authenticate", "")


def test_bound_token_with_its_certificate_passes(mtls, pki):
    token = mtls.token(cnf={"x5t#S256": pki["a"].thumbprint})
    assert get(token, pki["a"].escaped_pem).status_code == 200


def test_bound_token_with_another_certificate_is_401(mtls, pki):
    token = mtls.token(cnf={"x5t#S256": pki["a"].thumbprint})
    response = get(token, pki["b"].escaped_pem)
    assert response.status_code == 401
    assert challenge(response) == (
        'Bearer realm="api", error="invalid_token", error_description="The token is '
        'bound to another client certificate (cnf x5t#S256)."'
    )


def test_bound_token_without_a_certificate_is_401(mtls, pki):
    token = mtls.token(cnf={"x5t#S256": pki["a"].thumbprint})
    for cert in (None, "", "-", "(null)"):
        response = get(token, cert)
        assert response.status_code == 401 and "none was presented" in challenge(response)


def test_the_header_is_ignored_unless_the_peer_is_a_trusted_proxy(mtls, pki):
    token = mtls.token(cnf={"x5t#S256": pki["a"].thumbprint})
    # A client talking to the app directly can send any header: it proves nothing.
    assert get(token, pki["a"].escaped_pem, remote="192.0.2.10").status_code == 401
    assert get(token, pki["a"].escaped_pem, remote="::1").status_code == 200


def test_without_mtls_settings_bound_tokens_are_refused(m2m_issuer, pki):
    token = m2m_issuer.token(cnf={"x5t#S256": pki["a"].thumbprint})
    assert get(token, pki["a"].escaped_pem).status_code == 401


def test_non_ascii_thumbprint_in_the_token_is_a_mismatch(mtls, pki):
    assert get(mtls.token(cnf={"x5t#S256": "é"}), pki["a"].escaped_pem).status_code == 401


def test_unbound_tokens_need_no_certificate(mtls):
    assert get(mtls.token()).status_code == 200


def test_required_dpop_still_accepts_certificate_bound_bearer_tokens(mtls, pki, settings):
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "DPOP": "required"}
    token = mtls.token(cnf={"x5t#S256": pki["a"].thumbprint})
    assert get(token, pki["a"].escaped_pem).status_code == 200
    assert get(mtls.token()).status_code == 401


def test_forwarded_certificate_formats(pki):
    cert = pki["a"]
    pem_spaces = cert.pem.replace("\n", " ")  # Apache, old nginx $ssl_client_cert on one line
    bare_b64 = base64.b64encode(cert.der).decode()  # Traefik: base64 DER, no armour
    for value in (cert.escaped_pem, cert.pem, pem_spaces, bare_b64):
        assert certificate_der(value) == cert.der, value[:40]
    for value in (None, "", "garbage", "%ZZ", "a" * 20000, base64.b64encode(b"\x02" * 100).decode()):
        assert certificate_der(value) is None


def test_trusted_proxies():
    proxies = TrustedProxies(["10.0.0.0/8", "127.0.0.1", "fd00::/8"])
    assert proxies.trusts("10.2.3.4") and proxies.trusts("127.0.0.1") and proxies.trusts("fd00::1")
    assert proxies.trusts("::ffff:10.0.0.1")  # IPv4-mapped, as dual-stack sockets report it
    assert not proxies.trusts("127.0.0.2") and not proxies.trusts("nonsense") and not proxies.trusts(None)
    assert not TrustedProxies([]).trusts("127.0.0.1")


def test_settings_are_checked(settings):
    from drf_m2m_auth.checks import check_settings

    base = {"ISSUER": "https://tenant.auth0.com/", "AUDIENCE": "https://api.example.com"}
    cases = [
        ({"DPOP": "yes"}, "E020"),
        ({"DPOP_ALGORITHMS": ["HS256"]}, "E021"),
        ({"DPOP_PROOF_MAX_AGE": 0}, "E022"),
        ({"TRUSTED_PROXIES": ["10.0.0.300"]}, "E023"),
        ({"MTLS_CERT_HEADER": "bad header"}, "E023"),
        ({"MTLS_CERT_HEADER": "X-SSL-Client-Cert"}, "W020"),
    ]
    for change, check_id in cases:
        settings.DRF_M2M_AUTH = {**base, **change}
        assert [e.id for e in check_settings()] == [f"drf_m2m_auth.{check_id}"], change


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@settings_(max_examples=200, deadline=None)
@given(expected=JSON | st.text(), forwarded=JSON | st.text(), remote=JSON, trusted=st.booleans())
def test_any_json_value_in_the_binding_or_the_headers_is_a_401_never_a_crash(expected, forwarded, remote, trusted):
    # The pure functions are public: a caller may hand them a token's cnf member of any JSON type.
    TrustedProxies(["10.0.0.0/24"]).trusts(remote)
    certificate_der(forwarded)
    try:
        check_certificate_binding(expected, forwarded, trusted=trusted)
    except InvalidToken as exc:
        assert exc.status_code == 401


@pytest.mark.parametrize("expected", [7, ["x"], {"x5t#S256": "a"}, None])
def test_a_binding_of_an_odd_type_is_a_mismatch(pki, expected):
    with pytest.raises(InvalidToken) as info:
        check_certificate_binding(expected, pki["a"].pem, trusted=True)
    assert info.value.reason == "mtls_certificate_mismatch"
