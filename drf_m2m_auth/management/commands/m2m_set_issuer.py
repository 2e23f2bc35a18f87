"""m2m_set_issuer: say which trusted issuer the clients without one belong to.

Migration 0003 records each client's issuer only when exactly one issuer is configured; with
several nothing is guessed, and migration 0005 (issuer required) refuses to run until every client
has one. Until then such a client's revocation state applies at every issuer and its grants at
none. This command fills the empty ones, all of them or those named with ``--client``, and
never changes a client that already has an issuer.

Exit status: 0 done (idempotent), 1 bad input (nothing written), 2 usage error.
"""

from __future__ import annotations

import json
import logging

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from drf_m2m_auth.admin import propagation_text
from drf_m2m_auth.ids import escape
from drf_m2m_auth.models import Client
from drf_m2m_auth.revocation_issuers import resolve_issuer

audit = logging.getLogger("drf_m2m_auth.audit")


class Command(BaseCommand):
    help = (
        "Record the issuer of clients that have none yet (after migration 0003 with several issuers "
        "configured): every such client, or those named with --client."
    )

    def add_arguments(self, parser):
        parser.add_argument("--issuer", required=True, metavar="ISSUER", help="a configured issuer")
        parser.add_argument(
            "--client",
            action="append",
            default=[],
            metavar="CLIENT_ID",
            help="only this client (repeatable); default: every client without an issuer",
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args, issuer, client, **opts):
        try:
            issuer = resolve_issuer(issuer)
        except ValueError as exc:
            raise CommandError(f"{exc} Nothing was changed.") from None
        with transaction.atomic():
            empty = Client.objects.select_for_update().filter(issuer__isnull=True)
            if client:
                empty = empty.filter(client_id__in=set(client))
            rows = {c.client_id: c.pk for c in empty}
            missing = sorted(set(client) - set(rows))
            if missing:
                taken = dict(
                    Client.objects.filter(client_id__in=missing, issuer__isnull=False).values_list(
                        "client_id", "issuer"
                    )
                )
                lines = [
                    f"{escape(m, 80)!r} already belongs to {taken[m]!r}"
                    if m in taken
                    else f"{escape(m, 80)!r} is unknown"
                    for m in missing
                ]
                raise CommandError(f"{'; '.join(lines)} (nothing was changed)")
            clash = sorted(
                Client.objects.filter(issuer=issuer, client_id__in=list(rows)).values_list("client_id", flat=True)
            )
            if clash:
                raise CommandError(
                    f"{issuer!r} already has client(s) {', '.join(escape(c, 80) for c in clash)}: delete one of "
                    "the two rows first (nothing was changed)"
                )
            count = Client.objects.filter(pk__in=list(rows.values())).update(issuer=issuer)
            for client_id in sorted(rows):
                audit.info("client %s: issuer set to %s", escape(client_id), escape(issuer))
        left = Client.objects.filter(issuer__isnull=True).count()
        if opts["json"]:
            self.stdout.write(
                json.dumps({"issuer": issuer, "clients": sorted(rows), "updated": count, "without_issuer": left})
            )
            return
        self.stdout.write(self.style.SUCCESS(f"{count} client(s) now belong to {issuer}") if count else "nothing to do")
        for client_id in sorted(rows):
            self.stdout.write(f"  {escape(client_id)}")
        if left:
            self.stdout.write(f"{left} client(s) still have no issuer: run this again for them.")
        else:
            self.stdout.write("Every client has an issuer: `manage.py migrate drf_m2m_auth` can finish.")
        if count:
            self.stdout.write(propagation_text())
