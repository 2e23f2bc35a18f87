"""m2m_drill against the status view served over real HTTP by pytest-django's live server.

The live server runs in this process, so it sees the drill's change at once; the fleet of real
processes is tests/realservices/test_fleet.py.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import include, path

from drf_m2m_auth.management.commands.m2m_drill import CANARY_ID
from drf_m2m_auth.models import Client, DeletedClient, ResourceGrant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

urlpatterns = [path("m2m/", include("drf_m2m_auth.urls"))]


def drill(*args: str) -> tuple[str, Exception | None]:
    out = StringIO()
    try:
        call_command("m2m_drill", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


@pytest.fixture
def status_url(live_server, m2m_issuer, settings):
    settings.DRF_M2M_AUTH = dict(settings.DRF_M2M_AUTH)  # loopback: the live server is on 127.0.0.1
    return live_server.url + "/m2m/status"


def test_reports_and_restores(status_url):
    Client.objects.create(client_id="svc-a", name="A")
    out, error = drill("--service", status_url, "--bound", "5")
    assert error is None, out
    assert f"canary '{CANARY_ID}' registered (inactive, no grants): version" in out
    assert f"{status_url}: version" in out and "every service saw the change within" in out
    assert not Client.objects.filter(client_id=CANARY_ID).exists()
    assert not DeletedClient.objects.filter(client_id=CANARY_ID).exists()
    assert list(Client.objects.values_list("client_id", flat=True)) == ["svc-a"]


def test_json(status_url):
    out, error = drill("--service", status_url, "--service", status_url, "--json")
    assert error is None
    report = json.loads(out)
    assert report["ok"] and list(report["services"]) == [status_url]  # the same URL once
    assert report["services"][status_url]["version"] >= report["version"] >= 1


def test_an_existing_canary_is_saved_unchanged_and_left(status_url):
    canary = Client.objects.create(client_id=CANARY_ID, name="kept", is_active=False)
    ResourceGrant.objects.create(client=canary, resource="nothing")
    revision = canary.revision
    out, error = drill("--service", status_url)
    assert error is None and "saved unchanged" in out and "canary left as it was" in out
    kept = Client.objects.get(client_id=CANARY_ID)
    assert (kept.name, kept.is_active, kept.resources) == ("kept", False, ["nothing"])
    assert kept.revision != revision


def test_a_leftover_tombstone_is_reported_not_deleted(status_url):
    DeletedClient.objects.create(client_id=CANARY_ID, was_active=False)
    out, error = drill("--service", status_url)
    assert error is not None and "tombstone" in str(error)
    assert DeletedClient.objects.filter(client_id=CANARY_ID).exists()


def test_refused_or_wrong_urls_fail_past_the_bound(status_url, settings):
    settings.DRF_M2M_AUTH = dict(settings.DRF_M2M_AUTH, STATUS_VIEW_ACCESS="scope:m2m:status")
    out, error = drill("--service", status_url, "--bound", "0.3")
    assert error is not None and "1 of 1 service(s) did not report version" in str(error)
    assert "NOT within 0.3 s (HTTP 401)" in out
    other = status_url.replace("/m2m/status", "/nothing-here")
    out, error = drill("--service", other, "--bound", "0.3")
    assert error is not None and "(HTTP 404)" in out
    assert not Client.objects.filter(client_id=CANARY_ID).exists()  # restored even on failure


def test_scope_access_with_the_token_from_the_environment(status_url, settings, m2m_issuer, monkeypatch):
    settings.DRF_M2M_AUTH = dict(settings.DRF_M2M_AUTH, STATUS_VIEW_ACCESS="scope:m2m:status")
    monkeypatch.setenv("M2M_DRILL_TOKEN", m2m_issuer.token(sub="monitor@clients", scopes=["m2m:status"]))
    out, error = drill("--service", status_url, "--bound", "5")
    assert error is None, out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--service", "orders.internal/m2m/status"], "must be an http(s) URL"),
        (["--service", "http://127.0.0.1:1/m2m/status", "--bound", "0"], "--bound must be a positive"),
        (["--service", "http://127.0.0.1:1/m2m/status", "--bound", "inf"], "--bound must be a positive"),
    ],
)
def test_usage_errors_write_nothing(args, message, m2m_issuer):
    out, error = drill(*args)
    assert error is not None and message in str(error)
    assert not Client.objects.exists()
