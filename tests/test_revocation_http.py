"""Grants and revocation through DRF's real request cycle: HasResourceGrant, 401/403 and headers.

The URLconf is this module (``urlpatterns`` below).
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import path
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from drf_m2m_auth.models import Client, ResourceGrant, RevokedToken
from drf_m2m_auth.permissions import HasResourceGrant, HasScopes

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


class Orders(APIView):
    permission_classes = [HasScopes & HasResourceGrant]
    required_scopes = ["read:orders"]
    resource_name = "orders"

    def get(self, request):
        return Response({"client_id": request.user.client_id})


class Payroll(Orders):
    resource_name = "payroll"


class GrantOrScope(Orders):
    """Either a grant for payroll, or the admin scope: DRF's | across our two permissions."""

    permission_classes = [HasResourceGrant | HasScopes]
    required_scopes = ["admin:all"]
    resource_name = "payroll"


class NoResourceName(APIView):
    permission_classes = [HasResourceGrant]

    def get(self, request):
        return Response({})


class WhoAmI(APIView):
    permission_classes = [HasScopes]
    required_scopes = ["read:orders"]

    def get(self, request):
        return Response({"client_id": request.user.client_id})


urlpatterns = [
    path("orders/", Orders.as_view()),
    path("payroll/", Payroll.as_view()),
    path("either/", GrantOrScope.as_view()),
    path("misconfigured/", NoResourceName.as_view()),
    path("whoami/", WhoAmI.as_view()),
]


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def service_a():
    client = Client.objects.create(client_id="client_id_of_service_a", name="Service A")
    ResourceGrant.objects.bulk_create([ResourceGrant(client=client, resource=r) for r in ("orders", "invoices")])
    return client


def get(api, url, token):
    return api.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")


def test_grant_lets_in_where_granted_only(api, m2m_issuer, service_a):
    token = m2m_issuer.token(sub="client_id_of_service_a@clients", scopes=["read:orders"])
    assert get(api, "/orders/", token).status_code == 200
    response = get(api, "/payroll/", token)
    assert response.status_code == 403
    assert response.json()["detail"] == "This client has no grant for this resource."


def test_scopes_still_apply_with_a_grant(api, m2m_issuer, service_a):
    token = m2m_issuer.token(sub="client_id_of_service_a@clients", scopes=["read:other"])
    response = get(api, "/orders/", token)
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_or_composition(api, m2m_issuer, service_a):
    plain = m2m_issuer.token(sub="client_id_of_service_a@clients", scopes=["read:orders"])
    admin = m2m_issuer.token(sub="client_id_of_service_a@clients", scopes=["admin:all"])
    assert get(api, "/either/", plain).status_code == 403
    assert get(api, "/either/", admin).status_code == 200
    ResourceGrant.objects.create(client=service_a, resource="payroll")
    assert get(api, "/either/", plain).status_code == 200


def test_view_without_resource_name_is_a_configuration_error(api, m2m_issuer, service_a):
    token = m2m_issuer.token(sub="client_id_of_service_a@clients", scopes=["read:orders"])
    with pytest.raises(ImproperlyConfigured, match="resource_name"):
        get(api, "/misconfigured/", token)
    with pytest.raises(ImproperlyConfigured, match="resource_name"):  # even without credentials
        api.get("/misconfigured/")


def test_unregistered_client_authenticates_but_has_no_grants(api, m2m_issuer):
    token = m2m_issuer.token(sub="stranger@clients", scopes=["read:orders"])
    assert get(api, "/whoami/", token).status_code == 200
    response = get(api, "/orders/", token)
    assert response.status_code == 403
    assert response.json()["detail"] == "This client is not registered."


def test_unregistered_client_rejected_when_policy_says_deny(api, m2m_issuer, settings):
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "UNREGISTERED_CLIENTS": "deny"}
    response = get(api, "/whoami/", m2m_issuer.token(sub="stranger@clients", scopes=["read:orders"]))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert "not registered" in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "revoke, description",
    [
        (lambda c: c.deactivate(), "The client has been deactivated."),
        (lambda c: c.revoke_tokens(), "The access token has been revoked."),
        (
            lambda c: RevokedToken.objects.revoke("the-jti", timezone.now() + dt.timedelta(hours=1)),
            "The access token has been revoked.",
        ),
    ],
    ids=["deactivated", "tokens_valid_after", "jti"],
)
def test_revoked_is_401_invalid_token_even_for_a_cached_token(
    api, m2m_issuer, service_a, revoke, description, settings
):
    # A token issued after the revocation has iat in the next whole second: within the leeway.
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "LEEWAY": 5}
    token = m2m_issuer.token(
        sub="client_id_of_service_a@clients", scopes=["read:orders"], jti="the-jti", iat=int(time.time()) - 10
    )
    assert get(api, "/orders/", token).status_code == 200  # verified, now in the verified-token cache
    revoke(service_a)
    response = get(api, "/orders/", token)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="api", error="invalid_token", error_description="{description}"'
    )
    other = m2m_issuer.token(sub="client_id_of_service_a@clients", scopes=["read:orders"], iat=int(time.time()) + 1)
    expected = 401 if description.endswith("deactivated.") else 200
    assert get(api, "/orders/", other).status_code == expected
