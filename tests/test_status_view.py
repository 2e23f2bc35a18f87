"""The status view (drf_m2m_auth.urls, ``m2m-status``): its JSON, its access rules, its version.

The URLconf is this module: the app's urls mounted under ``m2m/`` as a user would.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import transaction
from django.urls import include, path, reverse
from rest_framework.test import APIClient

from drf_m2m_auth import revocation
from drf_m2m_auth.conf import validate
from drf_m2m_auth.models import Client, ResourceGrant, RevocationState, RevokedToken
from drf_m2m_auth.querysets import STAMP_STEP
from drf_m2m_auth.views import is_loopback

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

urlpatterns = [path("m2m/", include("drf_m2m_auth.urls"))]


def db_version() -> int | None:
    return RevocationState.objects.filter(pk=1).values_list("sequence", flat=True).first()


@pytest.fixture
def access(m2m_issuer, settings):
    def set_access(value: str | None, **extra) -> None:
        conf = dict(settings.DRF_M2M_AUTH, **extra)
        if value is not None:
            conf["STATUS_VIEW_ACCESS"] = value
        settings.DRF_M2M_AUTH = conf

    return set_access


def status(remote_addr="127.0.0.1", **headers):
    return APIClient().get(reverse("m2m-status"), REMOTE_ADDR=remote_addr, **headers)


def test_url_name_and_body(access, m2m_issuer):
    access(None)  # the default: loopback
    assert reverse("m2m-status") == "/m2m/status"
    Client.objects.create(client_id="svc-a", name="A")
    response = status()
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"revocation", "issuers"}
    assert body["revocation"]["version"] == db_version() >= 1
    assert body["revocation"]["age_s"] >= 0 and body["revocation"]["loaded_at"] > 0
    assert body["issuers"] == {m2m_issuer.issuer: {"keys": 0, "age_s": None}}  # nothing fetched for the view
    # After a token's verification the keys are there, with their age.
    api = APIClient()
    token = m2m_issuer.token(sub="svc-a@clients", scopes=["x"])
    api.get(reverse("m2m-status"), HTTP_AUTHORIZATION=f"Bearer {token}")  # not verified in loopback mode
    from drf_m2m_auth.verifier import get_verifier

    get_verifier().verify(token)
    keys = status().json()["issuers"][m2m_issuer.issuer]
    assert keys["keys"] == 1 and 0 <= keys["age_s"] < 60


def test_no_secret_or_client_id_in_the_body(access, m2m_issuer):
    access("public")
    Client.objects.create(client_id="secret-looking-client", name="S")
    token = m2m_issuer.token(sub="secret-looking-client@clients", scopes=["x"])
    text = json.dumps(status(HTTP_AUTHORIZATION=f"Bearer {token}").json())
    assert "secret-looking-client" not in text and token not in text


def test_version_grows_with_every_kind_of_change(access):
    access("public")
    seen = [status().json()["revocation"]["version"]]
    client = Client.objects.create(client_id="svc-a", name="A")
    seen.append(status().json()["revocation"]["version"])
    ResourceGrant.objects.create(client=client, resource="orders")
    seen.append(status().json()["revocation"]["version"])
    RevokedToken.objects.revoke("jti-1", exp=client.created + dt.timedelta(hours=1))
    seen.append(status().json()["revocation"]["version"])
    client.delete()
    seen.append(status().json()["revocation"]["version"])
    assert all(b > a for a, b in zip(seen, seen[1:], strict=False)), seen
    assert seen[-1] == db_version()


def test_a_rolled_back_change_leaves_a_stamp_no_later_change_repeats():
    Client.objects.create(client_id="svc-a", name="A")
    before = RevocationState.objects.get(pk=1)
    with pytest.raises(RuntimeError), transaction.atomic():
        Client.objects.create(client_id="svc-b", name="B")
        inside = RevocationState.objects.get(pk=1).clients_stamp
        raise RuntimeError
    Client.objects.create(client_id="svc-c", name="C")
    after = RevocationState.objects.get(pk=1).clients_stamp
    # Same count as the rolled-back one, but other random low bits: processes reload on any difference.
    assert after // STAMP_STEP == inside // STAMP_STEP == before.clients_stamp // STAMP_STEP + 1
    assert after != inside


def test_loopback_default_refuses_other_peers_and_forwarded_for(access):
    access(None)
    assert status("127.0.0.1").status_code == 200
    assert status("127.8.9.10").status_code == 200
    assert status("::1").status_code == 200
    assert status("::ffff:127.0.0.1").status_code == 200
    refused = status("10.0.0.5", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert refused.status_code == 403
    assert "version" not in refused.content.decode()
    assert status("192.0.2.1").status_code == 403


@pytest.mark.parametrize("addr", [None, "", "localhost", "127.0.0.1, 10.0.0.1", "fe80::1%lo"])
def test_is_loopback_refuses_what_is_not_an_address(addr):
    assert not is_loopback(addr)


def test_public(access):
    access("public")
    assert status("203.0.113.9").status_code == 200


def test_scope_mode_needs_a_token_with_the_scope(access, m2m_issuer):
    access("scope:m2m:status")
    no_token = status("127.0.0.1")
    assert no_token.status_code == 401  # loopback is not enough in scope mode
    assert no_token["WWW-Authenticate"].startswith("Bearer")
    wrong = m2m_issuer.token(sub="mon@clients", scopes=["read:orders"])
    refused = status("203.0.113.9", HTTP_AUTHORIZATION=f"Bearer {wrong}")
    assert refused.status_code == 403 and 'error="insufficient_scope"' in refused["WWW-Authenticate"]
    right = m2m_issuer.token(sub="mon@clients", scopes=["m2m:status"])
    assert status("203.0.113.9", HTTP_AUTHORIZATION=f"Bearer {right}").status_code == 200
    assert status("203.0.113.9", HTTP_AUTHORIZATION="Bearer not.a.jwt").status_code == 401


def test_a_revoked_monitoring_client_is_refused(access, m2m_issuer):
    access("scope:m2m:status")
    Client.objects.create(client_id="mon", name="monitor", is_active=False)
    token = m2m_issuer.token(sub="mon@clients", scopes=["m2m:status"])
    assert status(HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


def test_503_with_retry_after_while_nothing_can_be_loaded(access, monkeypatch):
    access("public")
    from django.db import OperationalError

    from drf_m2m_auth.revocation_loader import DatabaseLoader

    def down(self, new):
        raise OperationalError("database is down")

    monkeypatch.setattr(DatabaseLoader, "reload", down)
    response = status()
    assert response.status_code == 503 and int(response["Retry-After"]) >= 1
    monkeypatch.undo()
    assert status().status_code == 200  # recovers by itself


def test_json_whatever_the_project_renders(access, settings):
    access("public")
    settings.REST_FRAMEWORK = dict(
        settings.REST_FRAMEWORK, DEFAULT_RENDERER_CLASSES=["rest_framework.renderers.BrowsableAPIRenderer"]
    )
    response = status(HTTP_ACCEPT="text/html,*/*")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"


def test_only_get(access):
    access("public")
    assert APIClient().post(reverse("m2m-status"), REMOTE_ADDR="127.0.0.1").status_code == 405


@pytest.mark.parametrize("value", ["loopback", "public", "scope:m2m:status", "scope:a.b/c"])
def test_setting_accepts(value, m2m_issuer):
    values, problems = validate(m2m_issuer.settings(STATUS_VIEW_ACCESS=value), ("default",))
    assert not problems and values["STATUS_VIEW_ACCESS"] == value


@pytest.mark.parametrize("value", ["", "Loopback", "scope:", "scope:a b", "any", None, ["public"], "scope:\x00"])
def test_setting_refuses(value, m2m_issuer):
    _, problems = validate(m2m_issuer.settings(STATUS_VIEW_ACCESS=value), ("default",))
    assert [(p.key, p.check_id) for p in problems] == [("STATUS_VIEW_ACCESS", "drf_m2m_auth.E031")], problems


def test_status_function_reports_what_this_process_loaded(access):
    access("public")
    Client.objects.create(client_id="svc-a", name="A")
    first = revocation.status()
    assert first["version"] == db_version()
