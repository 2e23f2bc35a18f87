"""Grants belong to an API: DRF_M2M_AUTH['API'] and E032, ResourceGrant.api in the models,
the fleet's admin (grants per API, a client's revocation state) and ``m2m_grant --api``.

Which grants a service *loads* (only its own API's) is revocation_state's, tested with it.
"""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from drf_m2m_auth import revocation
from drf_m2m_auth.checks import check_settings
from drf_m2m_auth.conf import m2m_settings
from drf_m2m_auth.models import Client, DeletedClient, ResourceGrant, RevokedToken

ISS = "https://tenant.auth0.com/"
OWN = "https://service-b.example"  # testproject's single audience: its API


def configure(settings, **conf):
    settings.DRF_M2M_AUTH = {"ISSUER": settings.DRF_M2M_AUTH.get("ISSUER", ISS), "LEEWAY": 5, **conf}


def e032(settings, conf) -> list[str]:
    settings.DRF_M2M_AUTH = conf
    return [e.msg for e in check_settings() if e.id == "drf_m2m_auth.E032"]


# --- E032: the API is this service's single audience, or it must be said ---------------------------


@pytest.mark.parametrize(
    "conf",
    [
        {"ISSUER": ISS, "AUDIENCE": ["https://orders.example", "https://billing.example"]},
        {
            "ISSUERS": [
                {"issuer": ISS, "audience": "https://orders.example"},
                {"issuer": "https://other.example/", "audience": "https://billing.example"},
            ]
        },
    ],
    ids=["several audiences", "entries with different audiences"],
)
def test_several_audiences_and_no_api_is_an_error_naming_the_key(settings, conf):
    (message,) = e032(settings, conf)
    assert "DRF_M2M_AUTH['API'] is required" in message
    assert "'https://billing.example'" in message and "'https://orders.example'" in message
    with pytest.raises(ImproperlyConfigured, match=r"DRF_M2M_AUTH\['API'\] is required"):
        m2m_settings.API


@pytest.mark.parametrize(
    "conf, api",
    [
        ({"ISSUER": ISS, "AUDIENCE": "https://orders.example"}, "https://orders.example"),
        ({"ISSUER": ISS, "AUDIENCE": ["https://orders.example"]}, "https://orders.example"),  # a list of one
        (
            {
                "ISSUERS": [
                    {"issuer": ISS, "audience": "https://orders.example"},
                    {"issuer": "https://other.example/", "audience": ["https://orders.example"]},
                ]
            },
            "https://orders.example",
        ),
        ({"ISSUER": ISS, "AUDIENCE": ["https://a.example", "https://b.example"], "API": "orders"}, "orders"),
        ({"ISSUER": ISS, "AUDIENCE": "https://orders.example", "API": "billing"}, "billing"),  # explicit wins
    ],
)
def test_the_api_is_the_single_audience_unless_given(settings, conf, api):
    assert e032(settings, conf) == []
    assert m2m_settings.API == api


@pytest.mark.parametrize("bad", ["", " ", " orders", "orders ", "ord\ners", "x" * 256, 5, ["orders"], b"orders"])
def test_a_bad_api_value_is_e032(settings, bad):
    (message,) = e032(settings, {"ISSUER": ISS, "AUDIENCE": "https://orders.example", "API": bad})
    assert message.startswith("DRF_M2M_AUTH['API'] must be None or the API's identifier")


def test_manage_py_check_shows_e032(settings):
    configure(settings, AUDIENCE=["https://orders.example", "https://billing.example"])
    with pytest.raises(SystemCheckError, match=r"drf_m2m_auth\.E032.*DRF_M2M_AUTH\['API'\] is required"):
        call_command("check")
    configure(settings, AUDIENCE=["https://orders.example", "https://billing.example"], API="orders")
    call_command("check", stdout=StringIO())


# --- the models -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_grant_without_api_gets_this_projects_own(settings):
    client = Client.objects.create(client_id="svc-a", name="A")
    assert ResourceGrant.objects.create(client=client, resource="orders").api == OWN
    made = ResourceGrant.objects.bulk_create(
        [ResourceGrant(client=client, resource="invoices"), ResourceGrant(client=client, api="billing", resource="x")]
    )
    assert [g.api for g in made] == [OWN, "billing"]
    assert sorted(ResourceGrant.objects.values_list("api", "resource")) == [
        ("billing", "x"),
        (OWN, "invoices"),
        (OWN, "orders"),
    ]
    unsaved = ResourceGrant(client=client, resource="reports")
    unsaved.full_clean()  # full_clean sees the API save() stores
    assert unsaved.api == OWN


@pytest.mark.django_db
def test_without_an_api_of_its_own_a_grant_must_name_one(settings):
    client = Client.objects.create(client_id="svc-a", name="A")
    configure(settings, AUDIENCE=["https://orders.example", "https://billing.example"])
    for attempt in (
        lambda: ResourceGrant.objects.create(client=client, resource="orders"),
        lambda: ResourceGrant.objects.bulk_create([ResourceGrant(client=client, resource="orders")]),
        lambda: ResourceGrant(client=client, resource="orders").full_clean(),
    ):
        with pytest.raises(ValidationError, match=r"Say which API this grant is for.*DRF_M2M_AUTH\['API'\]"):
            attempt()
    assert not ResourceGrant.objects.exists()
    assert ResourceGrant.objects.create(client=client, api="orders", resource="orders").api == "orders"


@pytest.mark.django_db
def test_unique_per_client_api_and_resource():
    a = Client.objects.create(client_id="svc-a", name="A")
    ResourceGrant.objects.create(client=a, api="orders", resource="reports")
    ResourceGrant.objects.create(client=a, api="billing", resource="reports")  # another API: another grant
    with pytest.raises(IntegrityError), transaction.atomic():
        ResourceGrant.objects.create(client=a, api="orders", resource="reports")
    with pytest.raises(ValidationError, match="already exists"):
        ResourceGrant(client=a, api="billing", resource="reports").full_clean()
    assert sorted(a.grants.values_list("api", flat=True)) == ["billing", "orders"]


@pytest.mark.django_db
def test_deactivating_revoking_or_deleting_a_client_applies_at_every_api(settings):
    client = Client.objects.create(client_id="svc-a", name="A")
    ResourceGrant.objects.bulk_create(
        [ResourceGrant(client=client, api=api, resource="reports") for api in (OWN, "orders", "billing")]
    )
    iss = revocation.only_issuer()
    client.deactivate()
    cut = timezone.now()
    Client.objects.filter(pk=client.pk).revoke_tokens(cut)
    for api in (OWN, "orders", "billing"):  # the same client row, seen by the service of each API
        configure(settings, AUDIENCE=OWN, API=api)
        state = revocation.client_state(iss, "svc-a")
        assert state is not None and not state.active and state.valid_after == cut.timestamp(), api
    client.delete()
    assert not ResourceGrant.objects.exists()  # every API's grants go with the client
    tomb = DeletedClient.objects.get(client_id="svc-a")
    assert tomb.issuer == iss and not tomb.was_active


# --- the admin: one for the fleet -----------------------------------------------------------------

GRANTS = "admin:drf_m2m_auth_resourcegrant_changelist"
CLIENTS = "admin:drf_m2m_auth_client_changelist"


@pytest.fixture
def fleet_grants(db):
    a = Client.objects.create(client_id="svc-a", name="A")
    b = Client.objects.create(client_id="svc-b", name="B")
    ResourceGrant.objects.bulk_create(
        [
            ResourceGrant(client=a, api="orders", resource="a"),
            ResourceGrant(client=a, api="orders", resource="b"),
            ResourceGrant(client=a, api="billing", resource="c"),
            ResourceGrant(client=b, api="shipping", resource="parcels"),
        ]
    )
    return a, b


def rows(page: str) -> int:
    return page.count('name="_selected_action"')


@pytest.mark.django_db
def test_grant_list_filters_by_api_and_searches_client_and_resource(admin_client, fleet_grants):
    page = admin_client.get(reverse(GRANTS)).content.decode()
    assert rows(page) == 4 and "shipping" in page and "parcels" in page
    assert revocation.only_issuer() in page  # the client's issuer is a column
    page = admin_client.get(reverse(GRANTS), {"api": "orders"}).content.decode()
    assert rows(page) == 2 and "parcels" not in page
    page = admin_client.get(reverse(GRANTS), {"q": "svc-b"}).content.decode()
    assert rows(page) == 1 and "parcels" in page
    page = admin_client.get(reverse(GRANTS), {"q": "parcels"}).content.decode()
    assert rows(page) == 1 and "svc-b" in page


@pytest.mark.django_db
def test_grant_list_shows_a_stored_client_id_escaped(admin_client):
    forged = Client(client_id="svc\nforged\u202e", name="x", issuer=revocation.only_issuer())
    Client.objects.bulk_create([forged])  # as a row written before validation existed would be
    ResourceGrant.objects.create(client=Client.objects.get(), api="orders", resource="a")
    page = admin_client.get(reverse(GRANTS)).content.decode()
    assert "svc\\u000aforged\\u202e" in page and "\u202e" not in page


@pytest.mark.django_db
def test_client_list_filters_by_grants_api_and_groups_resources_per_api(admin_client, settings, fleet_grants):
    configure(settings, AUDIENCE="https://orders.example", API="orders")  # its own API is listed first
    page = admin_client.get(reverse(CLIENTS)).content.decode()
    assert "orders: a, b · billing: c" in page and "shipping: parcels" in page
    assert 'href="?grants__api=billing"' in page  # the filter offers every API's grants
    page = admin_client.get(reverse(CLIENTS), {"grants__api": "shipping"}).content.decode()
    assert "svc-b" in page and "svc-a" not in page


@pytest.mark.django_db
def test_client_page_shows_its_grants_across_apis_and_its_revocation_state(admin_client, fleet_grants):
    a, _ = fleet_grants
    url = reverse("admin:drf_m2m_auth_client_change", args=[a.pk])
    page = admin_client.get(url).content.decode()
    assert "active; no cut-off" in page and "0 unexpired revoked token(s) (jti) name it; no tombstone" in page
    for api in ("orders", "billing"):
        assert f'value="{api}"' in page  # the inline's api column, one row per grant
    iss = revocation.only_issuer()
    later = timezone.now() + dt.timedelta(hours=1)
    RevokedToken.objects.create(jti="j-1", issuer=iss, client_id="svc-a", exp=later)
    RevokedToken.objects.create(jti="j-2", issuer=iss, client_id="svc-a", exp=timezone.now() - dt.timedelta(seconds=1))
    RevokedToken.objects.create(jti="j-3", issuer=iss, client_id="svc-b", exp=later)
    DeletedClient.objects.create(issuer=None, client_id="svc-a", was_active=False)  # a tombstone at every issuer
    cut = timezone.now()
    a.revoke_tokens(cut)
    a.deactivate()
    page = admin_client.get(url).content.decode()
    assert "inactive: every API rejects all its tokens" in page
    assert f"tokens issued before {cut.isoformat()} rejected" in page
    assert "1 unexpired revoked token(s) (jti) name it" in page and "tombstone of " in page


@pytest.mark.django_db
def test_grant_admin_add_and_delete_reach_the_request_path(admin_client):
    client = Client.objects.create(client_id="svc-a", name="A")
    iss = revocation.only_issuer()
    assert revocation.resources_for(iss, "svc-a") == frozenset()
    add = reverse("admin:drf_m2m_auth_resourcegrant_add")
    response = admin_client.post(add, {"client": client.pk, "api": "", "resource": "orders"}, follow=True)
    assert "within" in response.content.decode()  # how soon other processes see it
    grant = ResourceGrant.objects.get()
    assert grant.api == OWN and revocation.resources_for(iss, "svc-a") == {"orders"}
    delete = reverse("admin:drf_m2m_auth_resourcegrant_delete", args=[grant.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert revocation.resources_for(iss, "svc-a") == frozenset()


def inline(client: Client, grants: list[tuple[str, str]]) -> dict[str, str]:
    data = {
        "issuer": client.issuer,
        "client_id": client.client_id,
        "name": client.name,
        "description": "",
        "is_active": "on",
        "grants-TOTAL_FORMS": str(len(grants)),
        "grants-INITIAL_FORMS": "0",
        "grants-MIN_NUM_FORMS": "0",
        "grants-MAX_NUM_FORMS": "1000",
    }
    for i, (api, resource) in enumerate(grants):
        data.update({f"grants-{i}-api": api, f"grants-{i}-resource": resource})
    return data


@pytest.mark.django_db
def test_inline_grant_defaults_to_this_projects_api_and_takes_another(admin_client):
    client = Client.objects.create(client_id="svc-a", name="A")
    url = reverse("admin:drf_m2m_auth_client_change", args=[client.pk])
    assert f'name="grants-0-api" value="{OWN}"' in admin_client.get(url).content.decode()
    response = admin_client.post(url, inline(client, [("", "orders"), ("billing", "orders")]))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert sorted(client.grants.values_list("api", "resource")) == [("billing", "orders"), (OWN, "orders")]


@pytest.mark.django_db
def test_a_control_plane_without_an_api_of_its_own_must_name_it(admin_client, settings):
    client = Client.objects.create(client_id="svc-a", name="A")
    configure(settings, AUDIENCE=["https://orders.example", "https://billing.example"])
    url = reverse("admin:drf_m2m_auth_client_change", args=[client.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="grants-0-api" value=' not in page  # nothing pre-filled
    response = admin_client.post(url, inline(client, [("", "orders")]))
    assert response.status_code == 200
    assert "Say which API this grant is for: this project&#x27;s DRF_M2M_AUTH[&#x27;API&#x27;] cannot be" in (
        response.content.decode()
    )
    assert not ResourceGrant.objects.exists()
    # The grants' own admin: the same rule, then the grant is made for the API named.
    add = reverse("admin:drf_m2m_auth_resourcegrant_add")
    response = admin_client.post(add, {"client": client.pk, "api": "", "resource": "orders"})
    assert response.status_code == 200 and "Say which API this grant is for" in response.content.decode()
    response = admin_client.post(add, {"client": client.pk, "api": "orders", "resource": "orders"})
    assert response.status_code == 302
    assert list(client.grants.values_list("api", "resource")) == [("orders", "orders")]


# --- m2m_grant --api --------------------------------------------------------------------------------


def run(*args: str) -> str:
    out = StringIO()
    call_command("m2m_grant", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_m2m_grant_per_api_and_the_listing():
    out = run("svc-a", "reports", "--create")
    assert f"granted 'reports' at API '{OWN}'" in out
    assert "granted 'reports' at API 'billing'" in run("svc-a", "reports", "--api", "billing")
    assert "already granted 'reports' at API 'billing'" in run("svc-a", "reports", "--api", "billing")
    run("svc-a", "invoices", "--api", "billing")
    listing = run("svc-a", "--list")
    assert listing.splitlines()[1:] == ["  billing: invoices", "  billing: reports", f"  {OWN}: reports"]
    assert listing.splitlines()[0].endswith(": active")
    data = json.loads(run("svc-a", "--list", "--json"))
    assert {"api": "billing", "resource": "reports"} in data["grants"] and len(data["grants"]) == 3
    # --remove takes one API's grant away; the same resource at another API stays.
    assert "removed 'reports' at API 'billing'" in run("svc-a", "reports", "--remove", "--api", "billing")
    assert sorted(ResourceGrant.objects.values_list("api", "resource")) == [("billing", "invoices"), (OWN, "reports")]


@pytest.mark.django_db
def test_m2m_grant_needs_an_api_when_this_project_has_none(settings):
    configure(settings, AUDIENCE=["https://orders.example", "https://billing.example"])
    with pytest.raises(CommandError, match=r"say which API .* with --api: this project's DRF_M2M_AUTH\['API'\]"):
        run("svc-a", "reports", "--create")
    assert not Client.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["", " orders", "ord\ners"])
def test_m2m_grant_refuses_a_malformed_api(bad):
    Client.objects.create(client_id="svc-a", name="A")
    with pytest.raises(CommandError, match=r"--api must be None or the API's identifier"):
        run("svc-a", "reports", "--api", bad)
    assert not ResourceGrant.objects.exists()


@pytest.mark.django_db
def test_m2m_grant_list_and_usage_errors():
    with pytest.raises(CommandError, match="name at least one RESOURCE"):
        run("svc-a")
    with pytest.raises(CommandError, match="--list takes only the client id"):
        run("svc-a", "reports", "--list")
    with pytest.raises(CommandError, match="unknown client id 'nobody'"):
        run("nobody", "--list")
    Client.objects.create(client_id="svc-a", name="A", is_active=False)
    out = run("svc-a", "--list")
    assert "inactive (every API rejects its tokens)" in out and "no grants at any API" in out


def test_m2m_revoke_says_it_applies_at_every_api():
    from drf_m2m_auth.management.commands.m2m_revoke import Command

    assert "at every API at once" in Command.help


def test_an_undeterminable_api_alone_keeps_the_issuers_for_a_control_plane(settings):
    """A control plane serving no API registers clients at its issuers; as a data plane the same
    settings answer 503 (the problem is a problem), and reading API raises naming the key."""
    from django.core.exceptions import ImproperlyConfigured

    from drf_m2m_auth.conf import m2m_settings, validate_full
    from drf_m2m_auth.errors import ConfigurationInvalid

    entries = [
        {"issuer": "https://a.example/", "audience": "https://orders.example"},
        {"issuer": "https://b.example/", "audience": "https://billing.example"},
    ]
    found = validate_full({"ISSUERS": entries}, ["default"])
    assert [p.check_id for p in found.problems] == ["drf_m2m_auth.E032"]
    assert [p.issuer for p in found.policies] == ["https://a.example/", "https://b.example/"]
    settings.DRF_M2M_AUTH = {"ISSUERS": entries}
    assert m2m_settings.issuers == ["https://a.example/", "https://b.example/"]
    with pytest.raises(ImproperlyConfigured, match=r"DRF_M2M_AUTH\['API'\] is required"):
        m2m_settings.API
    with pytest.raises(ConfigurationInvalid):
        m2m_settings.ensure_valid()
    # Any other problem still leaves no issuer: nothing is trusted from a broken configuration.
    broken = validate_full({"ISSUERS": entries, "REALM": ""}, ["default"])
    assert broken.policies == [] and "drf_m2m_auth.E032" in [p.check_id for p in broken.problems]
