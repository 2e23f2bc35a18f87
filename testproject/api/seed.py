"""Register clients, resource grants and a few records at service-b from a plain dict."""

from __future__ import annotations

from django.db import transaction

from .models import DataRecord


@transaction.atomic
def apply(spec: dict) -> None:
    """``{"clients": [{client_id, name, resources: [...], issuer?}], "records": [{name, value}]}``

    A client without ``issuer`` belongs to the first trusted issuer (the local issuer; a second
    tenant, when the e2e suite runs one, registers nobody here unless a client names it).
    """
    from drf_m2m_auth.conf import issuer_policies
    from drf_m2m_auth.models import Client, ResourceGrant

    default_issuer = issuer_policies()[0].issuer
    for item in spec.get("clients", []):
        client, _ = Client.objects.update_or_create(
            issuer=item.get("issuer") or default_issuer,
            client_id=item["client_id"],
            defaults={"name": item.get("name", item["client_id"])},
        )
        for resource in item.get("resources", []):
            ResourceGrant.objects.get_or_create(client=client, resource=resource)
    for item in spec.get("records", []):
        DataRecord.objects.get_or_create(
            name=item["name"], defaults={"value": item["value"], "created_by": item.get("created_by", "seed")}
        )
