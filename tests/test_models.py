"""Client, ResourceGrant, RevokedToken: constraints, validation, idempotent helpers, migrations."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from drf_m2m_auth.models import Client, ResourceGrant, RevocationState, RevokedToken

pytestmark = pytest.mark.django_db


def test_str_and_ordering():
    b = Client.objects.create(client_id="bbb", name="Billing")
    a = Client.objects.create(client_id="aaa", name="aaa")
    assert str(b) == "Billing (bbb)"
    assert str(a) == "aaa"
    assert list(Client.objects.all()) == [a, b]
    grant = ResourceGrant.objects.create(client=b, resource="orders")
    assert str(grant) == "orders"
    entry = RevokedToken.objects.create(jti="j-1", exp=timezone.now())
    assert str(entry) == "j-1"
    assert str(RevocationState.objects.get(pk=1)) == "sequence=4"  # client, client, grant, token


def test_client_id_is_unique():
    Client.objects.create(client_id="svc-a", name="A")
    with pytest.raises(IntegrityError), transaction.atomic():
        Client.objects.create(client_id="svc-a", name="again")


def test_grant_is_unique_per_client_and_resource():
    a = Client.objects.create(client_id="svc-a", name="A")
    b = Client.objects.create(client_id="svc-b", name="B")
    ResourceGrant.objects.create(client=a, resource="orders")
    ResourceGrant.objects.create(client=b, resource="orders")
    with pytest.raises(IntegrityError), transaction.atomic():
        ResourceGrant.objects.create(client=a, resource="orders")
    api = ResourceGrant.objects.get(client=a).api
    assert api == "https://service-b.example"  # filled with the project's own API
    with pytest.raises(ValidationError, match="already exists"):
        ResourceGrant(client=a, api=api, resource="orders").full_clean()
    # the same resource at another API is another grant
    ResourceGrant.objects.create(client=a, api="https://reports.example", resource="orders")
    assert a.resources == ["orders", "orders"]


def test_client_id_with_auth0_suffix_is_refused_by_validation():
    with pytest.raises(ValidationError, match="@clients"):
        Client(client_id="abc@clients", name="x").full_clean()


@pytest.mark.parametrize("resource", ["", " orders", "or ders", "orders\n", "-x", "x" * 101])
def test_malformed_resource_is_refused(resource):
    client = Client.objects.create(client_id="svc-a", name="A")
    with pytest.raises(ValidationError):
        ResourceGrant(client=client, resource=resource).full_clean()


def test_defaults_and_timestamps():
    client = Client.objects.create(client_id="svc-a", name="A")
    assert client.is_active and client.tokens_valid_after is None and client.description == ""
    assert client.created <= client.updated
    before = client.revision
    client.deactivate()
    client.refresh_from_db()
    assert not client.is_active and client.revision != before


def test_queryset_helpers():
    Client.objects.create(client_id="a", name="A")
    Client.objects.create(client_id="b", name="B")
    assert Client.objects.deactivate() == 2
    assert Client.objects.active().count() == 0
    assert Client.objects.filter(client_id="a").activate() == 1
    assert list(Client.objects.active().values_list("client_id", flat=True)) == ["a"]
    when = timezone.now()
    Client.objects.revoke_tokens(when)
    assert set(Client.objects.values_list("tokens_valid_after", flat=True)) == {when}


def test_grant_changes_restamp_their_client():
    client = Client.objects.create(client_id="svc-a", name="A")
    seen = {client.revision}
    grant = ResourceGrant.objects.create(client=client, resource="orders")
    client.refresh_from_db()
    seen.add(client.revision)
    grant.delete()
    client.refresh_from_db()
    seen.add(client.revision)
    assert len(seen) == 3


def test_revoke_jti_is_idempotent_and_never_shortens():
    soon = timezone.now() + dt.timedelta(minutes=10)
    later = soon + dt.timedelta(hours=1)
    entry, created = RevokedToken.objects.revoke("j-1", soon, client_id="svc-a")
    assert created
    entry, created = RevokedToken.objects.revoke("j-1", later)
    assert not created and entry.exp == later
    entry, created = RevokedToken.objects.revoke("j-1", soon)
    assert not created and entry.exp == later and entry.client_id == "svc-a"
    assert RevokedToken.objects.count() == 1


@pytest.mark.parametrize("jti", ["", "x" * 8193])
def test_malformed_jti_is_refused_and_nothing_written(jti):
    with pytest.raises(ValidationError):
        RevokedToken.objects.revoke(jti, timezone.now() + dt.timedelta(minutes=1))
    assert not RevokedToken.objects.exists()


def test_naive_exp_is_refused():
    with pytest.raises(ValidationError, match="timezone"):
        RevokedToken.objects.revoke("j", dt.datetime(2030, 1, 1))


def test_revoking_a_jti_purges_expired_entries():
    RevokedToken.objects.create(jti="gone", exp=timezone.now() - dt.timedelta(seconds=1))
    RevokedToken.objects.revoke("new", timezone.now() + dt.timedelta(minutes=5))
    assert list(RevokedToken.objects.values_list("jti_display", flat=True)) == ["new"]


def test_purge_expired():
    now = timezone.now()
    RevokedToken.objects.create(jti="gone", exp=now - dt.timedelta(seconds=1))
    RevokedToken.objects.create(jti="kept", exp=now + dt.timedelta(minutes=1))
    assert RevokedToken.objects.purge_expired(now) == 1
    assert list(RevokedToken.objects.values_list("jti_display", flat=True)) == ["kept"]


def test_the_request_path_lookups_are_indexed():
    from django.db import connection

    with connection.cursor() as cursor:
        grant_indexes = connection.introspection.get_constraints(cursor, ResourceGrant._meta.db_table)
        token_indexes = connection.introspection.get_constraints(cursor, RevokedToken._meta.db_table)
        client_indexes = connection.introspection.get_constraints(cursor, Client._meta.db_table)
    assert any(c["columns"] == ["client_id", "api", "resource"] and c["unique"] for c in grant_indexes.values())
    assert any(c["columns"] == ["api"] and c["index"] for c in grant_indexes.values())
    assert any(c["columns"] == ["exp"] and c["index"] for c in token_indexes.values())
    # A client is (issuer, client_id); a denied jti is (issuer, digest), also found by digest alone.
    assert any(c["columns"] == ["issuer", "jti_sha256"] and c["unique"] for c in token_indexes.values())
    assert any(c["columns"] == ["jti_sha256"] and c["index"] for c in token_indexes.values())
    assert any(c["columns"] == ["issuer", "client_id"] and c["unique"] for c in client_indexes.values())


def test_migrations_are_complete_and_create_the_state_row():
    out = StringIO()
    call_command("makemigrations", "drf_m2m_auth", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()
    assert RevocationState.objects.filter(pk=1).exists()


@pytest.mark.parametrize(
    "client_id, problem",
    [
        ("x" * 256, "at most 255"),
        ("svc\x00a", "U+0000"),
        ("svc\na", "U+000A"),
        ("svc\u202ea", "U+202E"),
        ("svc\u2066a", "U+2066"),
        ("svc\ufeffa", "U+FEFF"),
        (" svc", "surrounding spaces"),
    ],
)
def test_client_ids_with_control_or_format_characters_are_refused(client_id, problem):
    with pytest.raises(ValidationError, match=problem.replace("+", r"\+")):
        Client(client_id=client_id, name="A").full_clean()


def test_migration_digests_existing_jtis(django_db_blocker):
    """0002 computes jti_sha256 for rows written by 0001 (a plain jti column)."""
    import importlib

    from drf_m2m_auth.ids import escape, jti_digest

    migration = importlib.import_module("drf_m2m_auth.migrations.0002_jti_digest_tombstones")
    rows = {1: "abc-1", 2: "z" * 120}

    class Rows:
        def __init__(self):
            self.updates = {}

        def using(self, alias):
            return self

        def values_list(self, *names):
            return list(rows.items())

        def filter(self, pk):
            outer = self

            class One:
                def update(self, **values):
                    outer.updates[pk] = values

            return One()

    fake = Rows()

    class Apps:
        def get_model(self, app, name):
            return type("M", (), {"objects": fake})

    class Editor:
        connection = type("C", (), {"alias": "default"})()

    migration.digest_jtis(Apps(), Editor())
    assert fake.updates == {pk: {"jti_sha256": jti_digest(j), "jti_display": escape(j, 100)} for pk, j in rows.items()}


@pytest.mark.parametrize("resource", ["orders\n", "ord\x00ers", "orders\u202e", "or\u200bders", "ordérs", " orders"])
def test_resource_names_with_control_format_or_non_ascii_characters_are_refused(resource):
    from drf_m2m_auth.models import validate_resource

    with pytest.raises(ValidationError):
        validate_resource(resource)
