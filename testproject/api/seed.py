"""Register clients, resource grants and a few records at service-b from a plain dict."""

from __future__ import annotations

from django.db import router, transaction

from .models import DataRecord


def apply(spec: dict) -> None:
    """``{"clients": [{client_id, name, resources: [...], issuer?}], "records": [{name, value}]}``

    ``resources`` are granted on this project's own API (``DRF_M2M_AUTH["API"]``). A client
    without ``issuer`` belongs to the first trusted issuer (the local issuer; a second tenant,
    when the e2e suite runs one, registers nobody here unless a client names it).
    """
    from drf_m2m_auth.conf import issuer_policies
    from drf_m2m_auth.models import Client

    default_issuer = issuer_policies()[0].issuer
    # drf_m2m_auth's tables may be on another alias (the fleet's, through M2MRouter): one
    # transaction there for the clients and grants, one on this project's database for the records.
    if spec.get("clients"):
        with transaction.atomic(using=router.db_for_write(Client)):
            _clients(spec["clients"], default_issuer)
    with transaction.atomic(using=router.db_for_write(DataRecord)):
        for item in spec.get("records", []):
            DataRecord.objects.get_or_create(
                name=item["name"], defaults={"value": item["value"], "created_by": item.get("created_by", "seed")}
            )


def _clients(items: list[dict], default_issuer: str) -> None:
    from drf_m2m_auth.models import Client, ResourceGrant

    for item in items:
        client, _ = Client.objects.update_or_create(
            issuer=item.get("issuer") or default_issuer,
            client_id=item["client_id"],
            defaults={"name": item.get("name", item["client_id"])},
        )
        for resource in item.get("resources", []):
            ResourceGrant.objects.get_or_create(client=client, resource=resource)
