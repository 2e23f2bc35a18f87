"""HasScopes: list and per-action/per-method dicts, exact matching, RFC 6750 403, composition."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate

from drf_m2m_auth.permissions import HasScopes
from drf_m2m_auth.principal import AccessToken, ServiceClient

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]


def call(method, url, issuer, scopes):
    token = issuer.token(scopes=scopes)
    return getattr(APIClient(), method)(url, HTTP_AUTHORIZATION=f"Bearer {token}")


def test_list_spec_all_required(m2m_issuer):
    assert call("get", "/echo/", m2m_issuer, ["read:data"]).status_code == 200
    response = call("get", "/echo/", m2m_issuer, ["write:data"])
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api", error="insufficient_scope", scope="read:data"'


def test_exact_matching(m2m_issuer):
    for near in (["read:database"], ["read:dat"], ["READ:DATA"], ["read:data:all"], ["read"]):
        assert call("get", "/echo/", m2m_issuer, near).status_code == 403


@pytest.mark.parametrize(
    "method,url,scopes,status",
    [
        ("get", "/data/", ["read:data"], 200),  # action "list" wins over method "GET"
        ("get", "/data/", ["read:other"], 403),
        ("post", "/data/", ["write:data"], 201),
        ("post", "/data/", ["read:data"], 403),
        ("get", "/data/7/", ["read:other"], 200),  # "retrieve" has no entry: the GET entry applies
        ("get", "/data/7/", ["read:data"], 403),
        ("put", "/data/7/", ["read:data", "write:data", "read:other", "admin:data"], 403),  # no entry: deny
    ],
)
def test_dict_spec_action_then_method(m2m_issuer, method, url, scopes, status):
    assert call(method, url, m2m_issuer, scopes).status_code == status


def test_missing_entry_is_plain_403_not_scope_challenge(m2m_issuer):
    response = call("put", "/data/7/", m2m_issuer, ["write:data"])
    assert response.status_code == 403 and "WWW-Authenticate" not in response.headers


def test_insufficient_scope_lists_all_needed_scopes(m2m_issuer):
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from drf_m2m_auth.authentication import M2MJWTAuthentication

    class Two(APIView):
        authentication_classes = [M2MJWTAuthentication]
        permission_classes = [HasScopes]
        required_scopes = ["write:data", "read:data"]

        def get(self, request):
            return Response({})

    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {m2m_issuer.token(scopes=['read:data'])}")
    response = Two.as_view()(request)
    assert response.status_code == 403
    assert 'scope="read:data write:data"' in response.headers["WWW-Authenticate"]


def test_no_token_is_401_not_403(m2m_issuer):
    assert APIClient().get("/data/").status_code == 401


@pytest.mark.parametrize(
    "url,scopes,status",
    [
        ("/or-allow/", ["read:data"], 200),  # HasScopes | Allow: the denial does not short-circuit
        ("/allow-or/", ["read:data"], 200),
        ("/deny-or/", ["read:data"], 403),  # Deny | HasScopes: HasScopes' 403 with its challenge
        ("/deny-or/", ["write:data"], 200),
        ("/and-allow/", ["read:data"], 403),
        ("/and-allow/", ["write:data"], 200),
        ("/not/", ["read:data"], 200),
        ("/not/", ["write:data"], 403),
    ],
)
def test_composition(m2m_issuer, url, scopes, status):
    response = call("get", url, m2m_issuer, scopes)
    assert response.status_code == status
    if url == "/deny-or/" and status == 403:
        assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_view_without_required_scopes_is_improperly_configured():
    from rest_framework.views import APIView

    class Nothing(APIView):
        pass

    token = AccessToken({"sub": "a", "iss": "i", "exp": 2e9, "iat": 1}, frozenset({"x"}))
    request = APIRequestFactory().get("/")
    request.auth = token
    with pytest.raises(ImproperlyConfigured, match="required_scopes"):
        HasScopes().has_permission(request, Nothing())


def test_string_spec_is_improperly_configured():
    class View:
        required_scopes = "read:data"

    request = APIRequestFactory().get("/")
    request.auth = AccessToken({"sub": "a", "iss": "i", "exp": 2e9, "iat": 1}, frozenset({"read:data"}))
    with pytest.raises(ImproperlyConfigured):
        HasScopes().has_permission(request, View())


def test_force_authenticate_works_for_users_tests():
    from tests.views import Echo

    token = AccessToken({"sub": "svc@clients", "iss": "i", "exp": 2e9, "iat": 1}, frozenset({"read:data"}))
    request = APIRequestFactory().get("/echo/")
    force_authenticate(request, user=ServiceClient.from_token(token), token=token)
    assert Echo.as_view()(request).status_code == 200
