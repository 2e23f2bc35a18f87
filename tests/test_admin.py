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
from drf_m2m_auth.ids import jti_digest
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


LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "admin-msg"}}


def test_add_client_with_grant_inline(admin_client, settings):
    settings.CACHES = LOCMEM  # the message depends on the cache (the PostgreSQL run uses Redis)
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
    assert revocation.resources_for(revocation.only_issuer(), "client_id_of_service_a") == {"orders", "invoices"}
    page = admin_client.get(response.url).content.decode()
    assert "other processes see it within 60 s (REVOCATION_DB_CHECK_INTERVAL)" in page
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
    assert (
        revocation.client_state(revocation.only_issuer(), a.client_id).valid_after == a.tokens_valid_after.timestamp()
    )
    entry = LogEntry.objects.get(object_id=str(a.pk))
    assert entry.action_flag == CHANGE and entry.user == admin_user and "Revoked all tokens" in entry.change_message


def test_deactivate_and_activate_actions_are_logged(admin_client, clients):
    a, b = clients
    _action(admin_client, "deactivate", a, b, search="service")
    assert not Client.objects.active().exists()
    assert not revocation.client_state(revocation.only_issuer(), a.client_id).active
    _action(admin_client, "activate", a)
    assert revocation.client_state(revocation.only_issuer(), a.client_id).active
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
        url,
        {"action": "purge_expired", "_selected_action": [RevokedToken.objects.denying("live-1").get().pk]},
        follow=True,
    )
    assert "Purged 1 expired entry" in response.content.decode()
    assert list(RevokedToken.objects.values_list("jti_display", flat=True)) == ["live-1"]
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
    assert jti_digest("leaked-jti") in revocation.process_cache().sync(wait=True).jtis[revocation.only_issuer()]
    bad = admin_client.post(
        reverse("admin:drf_m2m_auth_revokedtoken_add"),
        {"jti": "", "exp_0": exp.strftime("%Y-%m-%d"), "exp_1": exp.strftime("%H:%M:%S")},
    )
    assert bad.status_code == 200 and "This field is required" in bad.content.decode()


def _token(client_id, iat):
    from drf_m2m_auth.principal import AccessToken

    claims = {"sub": f"{client_id}@clients", "iss": revocation.only_issuer(), "aud": "api", "iat": iat}
    return AccessToken({**claims, "exp": iat + 3600}, frozenset())


def _reason(tok):
    from drf_m2m_auth.errors import InvalidToken

    try:
        revocation.check(tok)
    except InvalidToken as exc:
        return exc.reason
    return None


def test_deleting_a_deactivated_client_in_the_admin_never_re_enables_its_tokens(admin_client, clients):
    """Deleting a client, through the admin: the confirmation says what happens, and it happens."""
    b = clients[1]
    tok = _token(b.client_id, time.time())
    assert _reason(tok) == "client_inactive"
    url = reverse("admin:drf_m2m_auth_client_delete", args=[b.pk])
    page = admin_client.get(url).content.decode()
    assert "Deleting a client does not re-enable its tokens" in page
    response = admin_client.post(url, {"post": "yes"}, follow=True)
    assert response.status_code == 200 and not Client.objects.filter(pk=b.pk).exists()
    assert "Tombstone kept for Service B (client_id_of_service_b)" in response.content.decode()
    assert _reason(tok) == "client_inactive"  # before the fix: None (unregistered, accepted)
    tombstones = admin_client.get(reverse("admin:drf_m2m_auth_deletedclient_changelist")).content.decode()
    assert "client_id_of_service_b" in tombstones


def test_bulk_delete_in_the_admin_keeps_revoked_clients_revoked(admin_client, clients):
    a = clients[0]
    Client.objects.filter(pk=a.pk).revoke_tokens()
    before = _token(a.client_id, time.time() - 60)
    assert _reason(before) == "token_revoked"
    data = {"action": "delete_selected", "_selected_action": [a.pk, clients[1].pk]}
    page = admin_client.post(reverse(CHANGELIST), data).content.decode()
    assert "Deleting a client does not re-enable its tokens" in page
    response = admin_client.post(reverse(CHANGELIST), {**data, "post": "yes"}, follow=True)
    assert not Client.objects.exists() and "Tombstone kept for" in response.content.decode()
    assert _reason(before) == "token_revoked"
    assert _reason(_token(clients[1].client_id, time.time())) == "client_inactive"


def test_admin_messages_say_how_soon_other_processes_see_the_change(admin_client, clients, settings, tmp_path):
    settings.CACHES = LOCMEM
    response = admin_client.post(
        reverse(CHANGELIST), {"action": "revoke_tokens_now", "_selected_action": [clients[0].pk]}, follow=True
    )
    page = response.content.decode()
    assert "other processes see it within 60 s (REVOCATION_DB_CHECK_INTERVAL)" in page
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path)}
    }
    response = admin_client.post(
        reverse(CHANGELIST), {"action": "deactivate", "_selected_action": [clients[0].pk]}, follow=True
    )
    assert "Every process sharing the cache &#x27;default&#x27; sees it within about 1 s." in response.content.decode()


def test_client_id_with_a_bidi_override_is_refused_in_the_admin(admin_client):
    response = admin_client.post(
        reverse("admin:drf_m2m_auth_client_add"),
        {
            "client_id": "svc\u202eA",
            "name": "x",
            "is_active": "on",
            "grants-TOTAL_FORMS": "0",
            "grants-INITIAL_FORMS": "0",
            "grants-MIN_NUM_FORMS": "0",
            "grants-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 200 and "U+202E" in response.content.decode()
    assert not Client.objects.exists()
