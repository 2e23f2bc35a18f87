"""Load APIs, clients and grants into the local issuer from a plain dict (the demo's scenario)."""

from __future__ import annotations

from django.db import transaction

from . import keys
from .models import Api, ClientGrant, OAuthClient


@transaction.atomic
def apply(spec: dict) -> None:
    """``{"apis": [{identifier, name, scopes: [...], token_lifetime}],
    "clients": [{client_id, name, secret, grants: {audience: [scopes]}}]}``"""
    for item in spec.get("apis", []):
        Api.objects.update_or_create(
            identifier=item["identifier"],
            defaults={
                "name": item.get("name", item["identifier"]),
                "scopes": " ".join(item.get("scopes", [])),
                "token_lifetime": item.get("token_lifetime", Api._meta.get_field("token_lifetime").default),
            },
        )
    for item in spec.get("clients", []):
        client = OAuthClient.objects.filter(client_id=item["client_id"]).first() or OAuthClient(
            client_id=item["client_id"]
        )
        client.name = item.get("name", item["client_id"])
        client.set_secret(item["secret"])
        client.save()
        for audience, scopes in item.get("grants", {}).items():
            ClientGrant.objects.update_or_create(
                client=client, api=Api.objects.get(identifier=audience), defaults={"scopes": " ".join(scopes)}
            )
    keys.ensure_keys()
