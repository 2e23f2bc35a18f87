"""Several issuers, one API (verifier side): each token is judged by its own issuer's rules.

Real JWKS servers on 127.0.0.1 (their request counts prove what was fetched), the real request path
(M2MJWTAuthentication in a DRF view), `manage.py check` and the commands.
"""

from __future__ import annotations

import io

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from drf_m2m_auth.authentication import M2MJWTAuthentication
from drf_m2m_auth.conf import issuer_policies, issuer_policy, m2m_settings
from drf_m2m_auth.fetch import HTTPFetcher
from drf_m2m_auth.jwks import JWKSource
from drf_m2m_auth.principal import ServiceClient
from drf_m2m_auth.shared import shared_cache_for
from drf_m2m_auth.testing import JWKSServer
from drf_m2m_auth.tokens import TokenVerifier

TENANT = "0b0b0b0b-1111-2222-3333-444444444444"
ENTRA_V2 = f"https://login.microsoftonline.com/{TENANT}/v2.0"
ENTRA_V1 = f"https://sts.windows.net/{TENANT}/"

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]


def get(token: str, path: str = "/echo/"):
    return APIClient().get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


def reason(response) -> str:
    return response.headers.get("WWW-Authenticate", "")


@pytest.fixture
def servers():
    """Three real JWKS servers: an Auth0-shaped, an Okta-shaped and an Entra-shaped issuer."""
    with JWKSServer() as auth0, JWKSServer() as okta, JWKSServer() as entra:
        entra.fake.issuer = ENTRA_V2  # its keys still come from 127.0.0.1 (jwks_url below)
        yield auth0, okta, entra


@pytest.fixture
def three(servers, settings):
    auth0, okta, entra = servers
    settings.DRF_M2M_AUTH = {
        "ISSUERS": [
            {"issuer": auth0.fake.issuer, "audience": "https://orders.example", "preset": "auth0",
             "jwks_url": auth0.jwks_url},
            {"issuer": okta.fake.issuer, "audience": "api://default", "preset": "okta", "jwks_url": okta.jwks_url},
            {"issuer": ENTRA_V2, "audience": ["api://orders", "11111111-2222-3333-4444-555555555555"],
             "preset": "entra", "jwks_url": entra.jwks_url},
        ],
        "API": "https://orders.example",  # several audiences: the grants' API is named
    }  # fmt: skip
    return auth0.fake, okta.fake, entra.fake


def auth0_token(fake, **kw):
    return fake.token(
        sub="abc@clients", scopes="read:data", permissions=["read:data"], azp="abc", aud="https://orders.example", **kw
    )


def okta_token(fake, **kw):
    kw.setdefault("aud", "api://default")
    return fake.token(sub="0oa1", scopes=None, scp=["read:data"], cid="0oa1", **kw)


def entra_v2_token(fake, **kw):
    kw.setdefault("aud", "11111111-2222-3333-4444-555555555555")
    return fake.token(sub="oid-1", scopes=None, roles=["read:data"], azp="app-v2", ver="2.0", **kw)


def entra_v1_token(fake, **kw):
    kw.setdefault("aud", "api://orders")
    return fake.token(sub="oid-1", scopes=None, roles=["read:data"], appid="app-v1", ver="1.0", iss=ENTRA_V1, **kw)


def test_each_providers_token_passes_the_same_view_with_its_own_preset(three):
    auth0, okta, entra = three
    for token, client_id in (
        (auth0_token(auth0), "abc"),
        (okta_token(okta), "0oa1"),
        (entra_v2_token(entra), "app-v2"),
        (entra_v1_token(entra), "app-v1"),
    ):
        response = get(token)
        assert response.status_code == 200, (client_id, response.content)
        assert response.json()["client_id"] == client_id and response.json()["scopes"] == ["read:data"]


def test_each_providers_token_fails_with_another_presets_audience(three):
    auth0, okta, entra = three
    for token in (
        auth0.token(sub="abc@clients", azp="abc", aud="api://default"),
        okta_token(okta, aud="https://orders.example"),
        entra_v2_token(entra, aud="api://default"),
        entra_v1_token(entra, aud="https://orders.example"),
    ):
        response = get(token)
        assert response.status_code == 401 and "not meant for this API" in reason(response)


def test_an_issuers_own_scope_claims_apply(three):
    _, okta, _ = three
    # Okta's preset reads scp only: a "scope" string in an Okta token grants nothing.
    token = okta.token(sub="0oa1", scopes="read:data", cid="0oa1", aud="api://default")
    assert get(token).status_code == 403


def test_v1_and_v2_tokens_of_one_entra_entry_are_one_issuer_and_share_its_keys(three, servers):
    _, _, entra = three
    entra_server = servers[2]
    seen = {}

    class Probe(APIView):
        authentication_classes = [M2MJWTAuthentication]
        permission_classes: list = []

        def get(self, request):
            seen[request.auth.claims["iss"]] = (request.user.issuer, request.auth.issuer)
            return Response({})

    for token in (entra_v1_token(entra), entra_v2_token(entra)):
        request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert Probe.as_view()(request).status_code == 200
    assert seen == {ENTRA_V1: (ENTRA_V2, ENTRA_V2), ENTRA_V2: (ENTRA_V2, ENTRA_V2)}
    assert entra_server.jwks_requests == 1  # the alias shares its entry's JWKSource
    assert issuer_policy(ENTRA_V1) is issuer_policy(ENTRA_V2) is issuer_policies()[2]


def two_issuer_settings(a: JWKSServer, b: JWKSServer, **extra) -> dict:
    return {
        "ISSUERS": [
            {"issuer": a.fake.issuer, "audience": "https://api.example", "jwks_url": a.jwks_url},
            {"issuer": b.fake.issuer, "audience": "https://api.example", "jwks_url": b.jwks_url},
        ],
        **extra,
    }


def test_a_token_of_b_claiming_issuer_a_is_refused_and_b_keys_never_answer_for_a(settings):
    with JWKSServer() as a, JWKSServer() as b:
        settings.DRF_M2M_AUTH = two_issuer_settings(a, b)
        assert get(b.fake.token()).status_code == 200  # B's keys are now in B's JWKSource and the cache
        assert (a.jwks_requests, b.jwks_requests) == (0, 1)
        # Signed by B's key (B's kid), but claiming A: judged by A's keys only, fetched from A's URL.
        forged = b.fake.token(iss=a.fake.issuer)
        response = get(forged)
        assert response.status_code == 401, response.content
        assert b.jwks_requests == 1 and 1 <= a.jwks_requests <= 2
        assert get(a.fake.token()).status_code == 200 and get(b.fake.token()).status_code == 200


def test_the_key_issuer_binding_holds_in_one_shared_cache():
    """Two JWKSources (A, B) on one shared cache: B's cached JWKS never serves A's lookups."""
    with JWKSServer() as a, JWKSServer() as b:
        cache = shared_cache_for("default")
        fetch = HTTPFetcher(timeout=5, max_bytes=1 << 20)
        sources = {
            s.fake.issuer: JWKSource(s.fake.issuer, jwks_url=s.jwks_url, fetch=fetch, shared_cache=cache)
            for s in (a, b)
        }
        verifier = TokenVerifier(sources=sources, audiences=["https://api.example"])
        assert verifier.verify(b.fake.token()).issuer == b.fake.issuer
        # a second process: fresh sources over the same cache; B's JWKS comes from the cache
        fresh = {
            s.fake.issuer: JWKSource(s.fake.issuer, jwks_url=s.jwks_url, fetch=fetch, shared_cache=cache)
            for s in (a, b)
        }
        other = TokenVerifier(sources=fresh, audiences=["https://api.example"])
        assert other.verify(b.fake.token()).issuer == b.fake.issuer and b.jwks_requests == 1
        with pytest.raises(Exception) as caught:
            other.verify(b.fake.token(iss=a.fake.issuer))
        assert getattr(caught.value, "reason", None) in ("unknown_kid", "bad_signature"), caught.value
        assert b.jwks_requests == 1 and a.jwks_requests >= 1


def test_an_unknown_issuer_is_a_401_without_any_network_request(settings):
    with JWKSServer() as a, JWKSServer() as b, JWKSServer() as stranger:
        settings.DRF_M2M_AUTH = two_issuer_settings(a, b)
        response = get(stranger.fake.token())
        assert response.status_code == 401 and "does not trust" in reason(response)
        counts = [(s.jwks_requests, s.discovery_requests) for s in (a, b, stranger)]
        assert counts == [(0, 0), (0, 0), (0, 0)]


# --- settings: errors naming the entry, through manage.py check and through a request ---------------

BAD = [
    ({"ISSUER": "https://a.example/", "ISSUERS": [{"issuer": "https://b.example/", "audience": "x"}]}, "ISSUER"),
    ({"ISSUERS": [{"issuer": "https://a.example/"}]}, "['ISSUERS'][0]['audience']"),
    ({"ISSUERS": [{"issuer": "https://a.example/", "audience": "x", "audiences": "y"}]}, "['ISSUERS'][0]['audiences']"),
    ({"ISSUERS": [{"issuer": "https://a.example/", "audience": "x", "preset": "ping"}]}, "['ISSUERS'][0]['preset']"),
    (
        {"ISSUERS": [{"issuer": "https://a.example/", "audience": a} for a in ("x", "y")]},
        "['ISSUERS'][1]: issuer 'https://a.example/' is already trusted by ISSUERS[0]",
    ),
    ({"ISSUERS": [{"issuer": "http://idp.example/", "audience": "x"}]}, "['ISSUERS'][0]['issuer'] (no jwks_url"),
]


@pytest.mark.parametrize("conf, fragment", BAD)
def test_bad_issuer_settings_are_check_errors_naming_the_entry(settings, conf, fragment):
    settings.DRF_M2M_AUTH = conf
    with pytest.raises(SystemCheckError) as caught:
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
    assert fragment in str(caught.value), str(caught.value)


@pytest.mark.parametrize("conf, fragment", BAD)
def test_bad_issuer_settings_answer_503_to_a_request(settings, conf, fragment, m2m_jwks_server):
    settings.DRF_M2M_AUTH = conf
    response = get(m2m_jwks_server.fake.token())
    assert response.status_code == 503, response.content
    assert any(fragment in p.message for p in m2m_settings.problems)


def test_the_legacy_issuer_list_still_works_with_a_deprecation_warning(settings):
    with JWKSServer() as a, JWKSServer() as b:
        a.fake.audience = b.fake.audience = "https://api.example"
        settings.DRF_M2M_AUTH = {
            "ISSUER": [a.fake.issuer, b.fake.issuer],
            "AUDIENCE": "https://api.example",
            "JWKS_URL": {a.fake.issuer: a.jwks_url, b.fake.issuer: b.jwks_url},
        }
        out = io.StringIO()
        call_command("check", stdout=out, stderr=out)  # a warning, not an error
        assert "drf_m2m_auth.W030" in out.getvalue() and "deprecated" in out.getvalue()
        assert get(a.fake.token()).status_code == 200 and get(b.fake.token()).status_code == 200
        assert [p.issuer for p in issuer_policies()] == [a.fake.issuer, b.fake.issuer]


# --- the principal: (issuer, client_id) ------------------------------------------------------------


def test_service_client_identity_includes_the_issuer():
    def client(issuer):
        return ServiceClient("svc", subject="svc", scopes=frozenset(), claims={}, issuer=issuer)

    a, a2, b = client("https://a/"), client("https://a/"), client("https://b/")
    assert a == a2 and hash(a) == hash(a2) and a.pk == a2.pk
    assert a != b and a.pk != b.pk and len({a, b}) == 2
    assert a.client_id == b.client_id == "svc" and str(a) == "svc"


class OnePerMinute(UserRateThrottle):
    rate = "1/min"


class Throttled(APIView):
    authentication_classes = [M2MJWTAuthentication]
    throttle_classes = [OnePerMinute]
    permission_classes: list = []

    def get(self, request):
        return Response({"pk": request.user.pk})


def test_two_issuers_clients_with_one_id_get_separate_throttle_buckets(settings):
    caches["default"].clear()
    with JWKSServer() as a, JWKSServer() as b:
        settings.DRF_M2M_AUTH = two_issuer_settings(a, b)
        for s in (a, b):
            s.fake.audience = "https://api.example"

        def call(server):
            token = server.fake.token(sub="svc@clients")
            return Throttled.as_view()(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}"))

        first_a, first_b = call(a), call(b)
        assert (first_a.status_code, first_b.status_code) == (200, 200)  # B's svc is not A's svc
        assert first_a.data["pk"] != first_b.data["pk"]
        assert (call(a).status_code, call(b).status_code) == (429, 429)  # and each bucket does throttle


# --- commands: --issuer optional with one issuer, required with several -----------------------------


def run(name, *args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err)
    except CommandError as exc:
        return str(exc), out.getvalue()
    return None, out.getvalue()


def test_commands_need_issuer_when_several_are_trusted_and_do_nothing_without_it(settings):
    with JWKSServer() as a, JWKSServer() as b:
        settings.DRF_M2M_AUTH = two_issuer_settings(a, b)
        token = b.fake.token(aud="https://api.example")
        for name, args in (("m2m_jwks", ()), ("m2m_explain_token", (token,))):
            error, out = run(name, *args)
            assert error and "several issuers are trusted: name one with --issuer" in error, (name, error)
            assert a.fake.issuer in error and b.fake.issuer in error and out == ""
        assert (a.jwks_requests, b.jwks_requests) == (0, 0)
        error, out = run("m2m_jwks", "--issuer", b.fake.issuer)
        assert error is None and b.fake.issuer in out and a.fake.issuer not in out
        assert (a.jwks_requests, b.jwks_requests) == (0, 1)
        error, out = run("m2m_explain_token", "--issuer", b.fake.issuer, token)
        assert error is None and "ACCEPTED" in out
        error, out = run("m2m_explain_token", "--issuer", a.fake.issuer, token)
        assert error and "bad_issuer" in error and a.jwks_requests == 0


def test_deploy_check_names_the_entry_whose_keys_come_over_plain_http(settings):
    from drf_m2m_auth.checks import check_deploy_transport

    settings.DEBUG = False
    settings.DRF_M2M_AUTH = {
        "ISSUERS": [
            {"issuer": "https://a.example/", "audience": "x"},
            {"issuer": "https://b.example/", "audience": "x", "jwks_url": "http://idp.internal/keys"},
        ],
        "INSECURE_JWKS_HOSTS": ["idp.internal"],
    }
    (error,) = check_deploy_transport()
    assert error.id == "drf_m2m_auth.E011" and "DRF_M2M_AUTH['ISSUERS'][1]['jwks_url']" in error.msg
