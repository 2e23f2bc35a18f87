"""A client is (issuer, client_id): two trusted issuers, one client id at both.

The outside review's reproduction: with two tenants, a client of tenant B named like a registered
client of tenant A got A's grants, and revoking A's client also hit B's. Here two real JWKS servers
on 127.0.0.1 (two FakeIssuers, the legacy ISSUER list that main accepts today) sign tokens for the
same client id, and every request goes through DRF's real request cycle.
"""

from __future__ import annotations

import datetime as dt
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import path, reverse
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from drf_m2m_auth import revocation
from drf_m2m_auth.models import Client, DeletedClient, ResourceGrant, RevokedToken
from drf_m2m_auth.permissions import HasResourceGrant, HasScopes
from drf_m2m_auth.revocation_cache import RevocationCache
from drf_m2m_auth.testing import JWKSServer

from .revocation_support import reason_of, token

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


class Orders(APIView):
    permission_classes = [HasScopes & HasResourceGrant]
    required_scopes = ["read:orders"]
    resource_name = "orders"

    def get(self, request):
        return Response({"client_id": request.user.client_id})


urlpatterns = [path("orders/", Orders.as_view())]


@pytest.fixture
def tenants(settings):
    """Two issuers trusted by one API, each with its own JWKS server."""
    a, b = JWKSServer(), JWKSServer()
    b.fake.audience = a.fake.audience
    settings.DRF_M2M_AUTH = a.fake.settings(
        ISSUER=[a.fake.issuer, b.fake.issuer], JWKS_URL={a.fake.issuer: a.jwks_url, b.fake.issuer: b.jwks_url}
    )
    yield a.fake, b.fake
    a.stop()
    b.stop()


def call(fake, sub="svc@clients", **claims):
    token = fake.token(sub=sub, scopes=["read:orders"], **claims)
    return APIClient().get("/orders/", HTTP_AUTHORIZATION=f"Bearer {token}")


def registered(issuer, client_id="svc", *resources):
    client = Client.objects.create(issuer=issuer, client_id=client_id, name=client_id)
    ResourceGrant.objects.bulk_create([ResourceGrant(client=client, resource=r) for r in resources])
    return client


def test_a_grant_for_As_client_gives_Bs_client_of_the_same_id_nothing(tenants, settings):
    a, b = tenants
    registered(a.issuer, "svc", "orders")
    assert call(a).status_code == 200
    response = call(b)
    assert response.status_code == 403, response.content
    assert response.json()["detail"] == "This client is not registered."
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "UNREGISTERED_CLIENTS": "deny"}
    response = call(b)
    assert response.status_code == 401 and "not registered" in response.headers["WWW-Authenticate"]
    assert call(a).status_code == 200


def test_a_grant_for_Bs_client_does_not_leak_to_As(tenants):
    a, b = tenants
    registered(a.issuer, "svc")  # registered at A without the grant
    registered(b.issuer, "svc", "orders")
    assert call(b).status_code == 200
    assert call(a).json()["detail"] == "This client has no grant for this resource."


@pytest.mark.parametrize("action", ["deactivate", "revoke_tokens"])
def test_deactivating_or_revoking_As_client_leaves_Bs_untouched(tenants, action):
    a, b = tenants
    client_a = registered(a.issuer, "svc", "orders")
    registered(b.issuer, "svc", "orders")
    old_a, old_b = (
        a.token(sub="svc@clients", scopes=["read:orders"]),
        b.token(sub="svc@clients", scopes=["read:orders"]),
    )
    time.sleep(1.01)  # iat has second resolution: the cut-off must fall after these tokens
    getattr(client_a, action)()
    refused = APIClient().get("/orders/", HTTP_AUTHORIZATION=f"Bearer {old_a}")
    assert refused.status_code == 401
    reason = "client has been deactivated" if action == "deactivate" else "has been revoked"
    assert reason in refused.headers["WWW-Authenticate"]
    assert APIClient().get("/orders/", HTTP_AUTHORIZATION=f"Bearer {old_b}").status_code == 200


def test_the_same_action_by_queryset_is_per_issuer_too(tenants):
    a, b = tenants
    registered(a.issuer, "svc", "orders")
    registered(b.issuer, "svc", "orders")
    Client.objects.filter(issuer=a.issuer, client_id="svc").deactivate()
    assert call(a).status_code == 401
    assert call(b).status_code == 200


def test_revoking_a_jti_at_A_leaves_the_same_jti_at_B_valid(tenants):
    a, b = tenants
    registered(a.issuer, "svc", "orders")
    registered(b.issuer, "svc", "orders")
    RevokedToken.objects.revoke("shared-jti", timezone.now() + dt.timedelta(hours=1), issuer=a.issuer)
    refused = call(a, jti="shared-jti")
    assert refused.status_code == 401 and "has been revoked" in refused.headers["WWW-Authenticate"]
    assert call(b, jti="shared-jti").status_code == 200
    # Revoked at B as well: a second entry, not a conflict with A's.
    RevokedToken.objects.revoke("shared-jti", timezone.now() + dt.timedelta(hours=1), issuer=b.issuer)
    assert call(b, jti="shared-jti").status_code == 401
    assert RevokedToken.objects.denying("shared-jti").count() == 2
    assert RevokedToken.objects.denying("shared-jti", a.issuer).get().issuer == a.issuer
    # An entry without an issuer (from before the upgrade) denies at every issuer, beside A's own.
    RevokedToken.objects.revoke("old-jti", timezone.now() + dt.timedelta(hours=1), issuer=None)
    assert call(a, jti="old-jti").status_code == 401 and call(b, jti="old-jti").status_code == 401
    assert call(a, jti="shared-jti").status_code == 401 and call(a, jti="other").status_code == 200


def test_revoke_without_an_issuer_is_refused_when_several_are_configured(tenants):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="2 issuers are configured"):
        RevokedToken.objects.revoke("j", timezone.now() + dt.timedelta(hours=1))
    with pytest.raises(ValidationError, match="2 issuers are configured"):
        Client.objects.create(client_id="svc", name="svc")
    assert not RevokedToken.objects.exists() and not Client.objects.exists()


def test_deleting_As_revoked_client_keeps_As_tokens_rejected_and_not_Bs(tenants):
    a, b = tenants
    registered(a.issuer, "svc", "orders").deactivate()
    Client.objects.filter(issuer=a.issuer).delete()
    assert DeletedClient.objects.get().issuer == a.issuer
    registered(b.issuer, "svc", "orders")  # registering the id at B does not consume A's tombstone
    assert DeletedClient.objects.filter(issuer=a.issuer).exists()
    assert call(a).status_code == 401
    assert call(b).status_code == 200


# --- rows without an issuer (after migration 0003 with several issuers, before m2m_set_issuer) ---


class Rows:
    """A loader standing for a database whose client rows have no issuer yet."""

    def __init__(self, **sections):
        self.sections = sections

    def reload(self, new):
        for name, value in self.sections.items():
            setattr(new, name, value)
        return False


def test_a_client_without_an_issuer_is_revoked_everywhere_and_granted_nowhere():
    from drf_m2m_auth.revocation_state import ClientState

    now = time.time()
    off = ClientState(active=False, valid_after=None, resources=frozenset(), revision=1)
    cut = ClientState(active=True, valid_after=now, resources=frozenset(), revision=2)
    granted = ClientState(active=True, valid_after=None, resources=frozenset({"orders"}), revision=3)
    cache = RevocationCache(
        loader=Rows(every_issuer={"svc-off": off, "svc-cut": cut}, clients={"https://a/": {"svc-cut": granted}})
    )
    for iss in ("https://a/", "https://b/"):
        assert reason_of(token("svc-off", issuer=iss), cache) == "client_inactive"
        assert reason_of(token("svc-cut", issuer=iss, iat=now - 60), cache) == "token_revoked"
        assert reason_of(token("svc-cut", issuer=iss, iat=now + 1), cache) is None
        assert cache.resources_for(iss, "svc-off") is None
    # A's own row keeps its grants; the issuer-less row's cut-off still applies on top.
    assert cache.resources_for("https://a/", "svc-cut") == {"orders"}
    assert cache.resources_for("https://b/", "svc-cut") is None


def test_unregistered_clients_policy_per_issuer_and_aliases():
    cache = RevocationCache(
        loader=Rows(),
        deny_unregistered=False,
        deny_unregistered_by_issuer={"https://partner/": True},
        issuer_aliases={"https://sts.windows.net/t/": "https://login/t/v2.0"},
    )
    assert reason_of(token("stranger", issuer="https://internal/"), cache) is None
    assert reason_of(token("stranger", issuer="https://partner/"), cache) == "client_unregistered"
    strict = RevocationCache(
        loader=Rows(), deny_unregistered=True, deny_unregistered_by_issuer={"https://internal/": False}
    )
    assert reason_of(token("stranger", issuer="https://internal/"), strict) is None
    assert reason_of(token("stranger", issuer="https://partner/"), strict) == "client_unregistered"
    # An alias's tokens are judged as its entry's issuer's clients.
    from drf_m2m_auth.revocation_state import ClientState

    off = ClientState(active=False, valid_after=None, resources=frozenset(), revision=1)
    aliased = RevocationCache(
        loader=Rows(clients={"https://login/t/v2.0": {"svc": off}}),
        issuer_aliases={"https://sts.windows.net/t/": "https://login/t/v2.0"},
    )
    assert reason_of(token("svc", issuer="https://sts.windows.net/t/"), aliased) == "client_inactive"


# --- commands and admin with two issuers --------------------------------------------------------


def run(*args):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue()


def test_commands_need_issuer_when_several_are_configured_and_write_nothing_without(tenants):
    a, b = tenants
    with pytest.raises(CommandError, match="2 issuers are configured.*Give --issuer; nothing was changed"):
        run("m2m_grant", "svc", "orders", "--create")
    assert not Client.objects.exists()
    run("m2m_grant", "svc", "orders", "--create", "--issuer", a.issuer)
    run("m2m_grant", "svc", "orders", "--create", "--issuer", b.issuer)
    with pytest.raises(CommandError, match="Give --issuer"):
        run("m2m_revoke", "--deactivate", "svc")
    with pytest.raises(CommandError, match="Give --issuer"):
        run("m2m_revoke", "--jti", "j", "--exp", str(int(time.time()) + 600))
    with pytest.raises(CommandError, match="not configured"):
        run("m2m_revoke", "--deactivate", "svc", "--issuer", "https://elsewhere.example/")
    assert Client.objects.filter(is_active=True).count() == 2 and not RevokedToken.objects.exists()
    assert "now inactive" in run("m2m_revoke", "--deactivate", "svc", "--issuer", a.issuer)
    assert call(a).status_code == 401 and call(b).status_code == 200
    run("m2m_revoke", "--jti", "j", "--exp", str(int(time.time()) + 600), "--issuer", b.issuer)
    assert call(b, jti="j").status_code == 401
    assert RevokedToken.objects.get().issuer == b.issuer


@pytest.mark.urls("testproject.urls")
def test_admin_offers_the_configured_issuers_and_filters_by_issuer(tenants, admin_client):
    a, b = tenants
    page = admin_client.get(reverse("admin:drf_m2m_auth_client_add")).content.decode()
    assert f'<option value="{a.issuer}">' in page and f'<option value="{b.issuer}">' in page
    missing = admin_client.post(
        reverse("admin:drf_m2m_auth_client_add"),
        {"client_id": "svc", "name": "S", "is_active": "on", "grants-TOTAL_FORMS": "0", "grants-INITIAL_FORMS": "0"},
    )
    assert missing.status_code == 200 and "This field is required" in missing.content.decode()
    assert not Client.objects.exists()
    done = admin_client.post(
        reverse("admin:drf_m2m_auth_client_add"),
        {
            "issuer": b.issuer,
            "client_id": "svc",
            "name": "S",
            "is_active": "on",
            "grants-TOTAL_FORMS": "0",
            "grants-INITIAL_FORMS": "0",
        },
    )
    assert done.status_code == 302, done.content.decode()[:2000]
    assert Client.objects.get().issuer == b.issuer
    registered(a.issuer, "svc-a-only")
    changelist = reverse("admin:drf_m2m_auth_client_changelist")
    only_a = admin_client.get(changelist, {"issuer": a.issuer}).content.decode()
    assert "svc-a-only" in only_a and ">svc<" not in only_a
    searched = admin_client.get(changelist, {"q": b.issuer}).content.decode()
    assert ">svc<" in searched and "svc-a-only" not in searched
    assert revocation.resources_for(b.issuer, "svc") == frozenset()
