"""The admin through Django's test client: list, search, filter, inline grants, actions, LogEntry.

The same flows in a real browser are in tests/realservices/test_admin_browser.py.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.urls import reverse
from django.utils import timezone

from drf_m2m_auth import revocation
from drf_m2m_auth.models import Client, ResourceGrant, RevokedToken

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:drf_m2m_auth_client_changelist"


@pytest.fixture
def clients():
    a = Client.objects.create(client_id="client_id_of_service_a", name="Service A")
    ResourceGrant.objects.create(client=a, resource="orders")
    b = Client.objects.create(client_id="client_id_of_service_b", name="Service B", is_active=False)
    return a, b


def test_changelist_search_and_filter(admin_client, clients):
    page = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "client_id_of_service_a" in page and "client_id_of_service_b" in page and "orders" in page
    page = admin_client.get(reverse(CHANGELIST), {"q": "service_b"}).content.decode()
    assert "client_id_of_service_b" in page and "client_id_of_service_a" not in page
    page = admin_client.get(reverse(CHANGELIST), {"q": "orders"}).content.decode()  # by granted resource
    assert "client_id_of_service_a" in page and "client_id_of_service_b" not in page
    page = admin_client.get(reverse(CHANGELIST), {"is_active__exact": "1"}).content.decode()
    assert "client_id_of_service_a" in page and "client_id_of_service_b" not in page


def test_add_client_with_grant_inline(admin_client):
    response = admin_client.post(
        reverse("admin:drf_m2m_auth_client_add"),
        {
            "client_id": "client_id_of_service_a",
            "name": "Service A",
            "description": "",
            "is_active": "on",
            "grants-TOTAL_FORMS": "2",
            "grants-INITIAL_FORMS": "0",
            "grants-MIN_NUM_FORMS": "0",
            "grants-MAX_NUM_FORMS": "1000",
            "grants-0-resource": "orders",
            "grants-1-resource": "invoices",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert revocation.resources_for("client_id_of_service_a") == {"orders", "invoices"}
    assert LogEntry.objects.filter(object_repr__contains="client_id_of_service_a").exists()


def test_duplicate_grant_in_inline_is_a_form_error(admin_client):
    response = admin_client.post(
        reverse("admin:drf_m2m_auth_client_add"),
        {
            "client_id": "svc-a",
            "name": "A",
            "is_active": "on",
            "grants-TOTAL_FORMS": "2",
            "grants-INITIAL_FORMS": "0",
            "grants-MIN_NUM_FORMS": "0",
            "grants-MAX_NUM_FORMS": "1000",
            "grants-0-resource": "orders",
            "grants-1-resource": "orders",
        },
    )
    assert response.status_code == 200
    assert "Please correct the duplicate data" in response.content.decode()
    assert not Client.objects.exists()


def _action(admin_client, action, *clients, search=""):
    url = reverse(CHANGELIST) + (f"?q={search}" if search else "")
    return admin_client.post(url, {"action": action, "_selected_action": [c.pk for c in clients]}, follow=True)


def test_revoke_all_tokens_now(admin_client, admin_user, clients):
    a, _ = clients
    old_token_iat = time.time() - 1
    # Posted from a search across grants: a DISTINCT queryset, which FOR UPDATE must not trip on.
    response = _action(admin_client, "revoke_tokens_now", a, search="orders")
    assert "Revoked every token of 1 client" in response.content.decode()
    a.refresh_from_db()
    assert a.tokens_valid_after is not None and a.tokens_valid_after.timestamp() > old_token_iat
    assert revocation.client_state(a.client_id).valid_after == a.tokens_valid_after.timestamp()
    entry = LogEntry.objects.get(object_id=str(a.pk))
    assert entry.action_flag == CHANGE and entry.user == admin_user and "Revoked all tokens" in entry.change_message


def test_deactivate_and_activate_actions_are_logged(admin_client, clients):
    a, b = clients
    _action(admin_client, "deactivate", a, b, search="service")
    assert not Client.objects.active().exists()
    assert not revocation.client_state(a.client_id).active
    _action(admin_client, "activate", a)
    assert revocation.client_state(a.client_id).active
    messages = list(LogEntry.objects.order_by("pk").values_list("object_id", "change_message"))
    assert messages == [(str(a.pk), "Deactivated."), (str(b.pk), "Deactivated."), (str(a.pk), "Activated.")]


def test_actions_need_change_permission(client, django_user_model, clients):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_client"))
    client.force_login(user)
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "revoke_tokens_now" not in page
    _action(client, "revoke_tokens_now", clients[0])
    clients[0].refresh_from_db()
    assert clients[0].tokens_valid_after is None


def test_revoked_token_admin_and_purge(admin_client):
    now = timezone.now()
    RevokedToken.objects.create(jti="expired-1", exp=now - dt.timedelta(minutes=1))
    RevokedToken.objects.create(jti="live-1", exp=now + dt.timedelta(minutes=30), client_id="svc-a")
    url = reverse("admin:drf_m2m_auth_revokedtoken_changelist")
    assert "expired-1" not in admin_client.get(url, {"state": "active"}).content.decode()
    assert "live-1" in admin_client.get(url, {"q": "svc-a"}).content.decode()
    response = admin_client.post(
        url, {"action": "purge_expired", "_selected_action": [RevokedToken.objects.get(jti="live-1").pk]}, follow=True
    )
    assert "Purged 1 expired entry" in response.content.decode()
    assert list(RevokedToken.objects.values_list("jti", flat=True)) == ["live-1"]
    assert LogEntry.objects.get(action_flag=DELETION).object_repr == "expired-1"


def test_add_revoked_token_in_admin_takes_effect(admin_client):
    exp = timezone.now() + dt.timedelta(minutes=30)
    response = admin_client.post(
        reverse("admin:drf_m2m_auth_revokedtoken_add"),
        {
            "jti": "leaked-jti",
            "client_id": "svc-a",
            "exp_0": exp.strftime("%Y-%m-%d"),
            "exp_1": exp.strftime("%H:%M:%S"),
            "reason": "leaked in a log",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert "leaked-jti" in revocation._sync(wait=True).jtis
    bad = admin_client.post(
        reverse("admin:drf_m2m_auth_revokedtoken_add"),
        {"jti": "has space", "exp_0": exp.strftime("%Y-%m-%d"), "exp_1": exp.strftime("%H:%M:%S")},
    )
    assert bad.status_code == 200 and "printable ASCII" in bad.content.decode()
