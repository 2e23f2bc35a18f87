"""Register clients, resource grants and a few records at service-b from a plain dict."""

from __future__ import annotations

from django.db import transaction

from .models import DataRecord


@transaction.atomic
def apply(spec: dict) -> None:
    """``{"clients": [{client_id, name, resources: [...]}], "records": [{name, value}]}``"""
    from drf_m2m_auth.models import Client, ResourceGrant

    for item in spec.get("clients", []):
        client, _ = Client.objects.update_or_create(
            client_id=item["client_id"], defaults={"name": item.get("name", item["client_id"])}
        )
        for resource in item.get("resources", []):
            ResourceGrant.objects.get_or_create(client=client, resource=resource)
    for item in spec.get("records", []):
        DataRecord.objects.get_or_create(
            name=item["name"], defaults={"value": item["value"], "created_by": item.get("created_by", "seed")}
        )
