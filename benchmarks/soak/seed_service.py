"""Prepare service-b's database for the soak run and report the settings the checker needs.

Run with service-b's settings: migrates, registers the clients of the plan (JSON file: ``granted``
clients get the ``orders`` grant, ``ungranted`` ones are registered without it, ``inactive`` ones
are registered and deactivated) and prints the running configuration's propagation intervals (revocation, status
lists) as one JSON line.
"""

from __future__ import annotations

import json
import sys

import django


def main(plan_path: str) -> None:
    django.setup()
    from django.conf import settings
    from django.core.exceptions import FieldDoesNotExist
    from django.core.management import call_command

    from drf_m2m_auth.conf import m2m_settings
    from drf_m2m_auth.models import Client, ResourceGrant

    call_command("migrate", verbosity=0, interactive=False)
    plan = json.loads(open(plan_path).read())
    everyone = plan["granted"] + plan["ungranted"] + plan["inactive"]
    try:  # where a client is (issuer, client_id), bulk_create does not fill the issuer in: name it
        Client._meta.get_field("issuer")
        named = {"issuer": settings.DRF_M2M_AUTH["ISSUER"]}
    except FieldDoesNotExist:
        named = {}
    Client.objects.bulk_create([Client(client_id=c, name=c, **named) for c in everyone])
    by_id = dict(Client.objects.filter(client_id__in=everyone).values_list("client_id", "pk"))
    granted = plan["granted"] + plan["inactive"]
    ResourceGrant.objects.bulk_create([ResourceGrant(client_id=by_id[c], resource="orders") for c in granted])
    Client.objects.filter(client_id__in=plan["inactive"]).deactivate()
    names = ("REVOCATION_CHECK_INTERVAL", "REVOCATION_DB_CHECK_INTERVAL", "JWKS_REFRESH_COOLDOWN", "LEEWAY")
    names += ("STATUS_LIST", "STATUS_LIST_MIN_TTL", "STATUS_LIST_MAX_TTL", "STATUS_LIST_STALE_IF_ERROR")
    print(json.dumps({name: getattr(m2m_settings, name) for name in names}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
