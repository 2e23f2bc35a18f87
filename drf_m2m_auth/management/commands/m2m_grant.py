"""m2m_grant: let a client use resources of one API (or take them away with --remove; --list shows them).

A client is (issuer, client_id): ``--issuer`` names the trusted issuer; it may be left out only
when exactly one issuer is configured. A grant belongs to an API: ``--api`` names it, and defaults
to this project's own (``DRF_M2M_AUTH["API"]``); a control plane that serves no API of its own
must always give it. Revoking or deactivating a client (m2m_revoke) applies to every API at once.

Exit status: 0 done (idempotent: existing grants are reported, not duplicated), 1 bad input or
unknown client (nothing written), 2 usage error.
"""

from __future__ import annotations

import json
import logging

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import router, transaction

from drf_m2m_auth import revocation
from drf_m2m_auth.admin import propagation_text
from drf_m2m_auth.ids import client_id_problem, escape
from drf_m2m_auth.models import Client, ResourceGrant, validate_resource
from drf_m2m_auth.revocation_issuers import resolve_issuer
from drf_m2m_auth.validation import Invalid, api_identifier

audit = logging.getLogger("drf_m2m_auth.audit")


class Command(BaseCommand):
    help = (
        "Grant a client the named resources (a view's resource_name) at one API (--api, default: this "
        "project's DRF_M2M_AUTH['API']), remove them with --remove, or --list every API's grants."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "client_id", metavar="CLIENT_ID", help="the OAuth client id (for Auth0: without '@clients')"
        )
        parser.add_argument("resources", nargs="*", metavar="RESOURCE")
        parser.add_argument(
            "--issuer", metavar="ISSUER", help="the client's trusted issuer (required when several are configured)"
        )
        parser.add_argument(
            "--api",
            metavar="API",
            help="the API the grants are for (default: this project's DRF_M2M_AUTH['API']); "
            "a grant for one API gives nothing at another",
        )
        parser.add_argument("--list", action="store_true", help="show the client's grants at every API")
        parser.add_argument("--remove", action="store_true", help="remove these grants instead")
        parser.add_argument("--create", action="store_true", help="register the client if it is unknown")
        parser.add_argument("--name", default="", help="with --create: the client's display name")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args, client_id, resources, remove, create, name, **opts):
        self.json = opts["json"]
        self.events: list[dict] = []
        if opts["list"]:
            if resources or remove or create or name or opts["api"]:
                raise CommandError("--list takes only the client id (and --issuer, --json)")
            return self._list(client_id, opts.get("issuer"))
        self._validate(client_id, resources, remove, create, name)
        api = self._api(opts["api"])
        try:
            issuer = resolve_issuer(opts.get("issuer"))
        except ValueError as exc:
            raise CommandError(f"{exc} Give --issuer; nothing was changed.") from None
        with transaction.atomic(using=router.db_for_write(Client)):
            client = Client.objects.select_for_update().filter(issuer=issuer, client_id=client_id).first()
            if client is None:
                if not create:
                    unassigned = Client.objects.filter(issuer__isnull=True, client_id=client_id).exists()
                    hint = (
                        f"; a client {client_id!r} without an issuer exists: m2m_set_issuer --issuer ISSUER "
                        f"--client {client_id!r} says whose it is"
                        if unassigned
                        else ""
                    )
                    raise CommandError(
                        f"unknown client id {client_id!r} at issuer {issuer!r} (add --create to register it{hint}; "
                        "nothing was changed)"
                    )
                client = Client(issuer=issuer, client_id=client_id, name=name or client_id)
                client.full_clean()
                client.save()
                audit.info("registered client %s of %s", escape(client_id), escape(issuer))
                self._say(
                    {"action": "register", "issuer": issuer, "client_id": client_id},
                    f"client {client_id!r} of {issuer}: registered",
                )
            have = set(client.grants.filter(api=api).values_list("resource", flat=True))
            if remove:
                self._remove(client, api, resources, have)
            else:
                self._add(client, api, resources, have)
        info = revocation.announcement()
        if self.json:
            self.stdout.write(
                json.dumps(
                    {"issuer": issuer, "client_id": client_id, "api": api, "changes": self.events, **info}, indent=2
                )
            )
        elif any(e["changed"] for e in self.events):
            self.stdout.write(propagation_text())
        if not info["announced"] and info["cross_process_cache"]:
            self.stderr.write(
                self.style.WARNING(
                    "warning: the shared cache is unreachable, so workers were not notified; the change is "
                    "stored and workers find it in the database"
                )
            )

    @staticmethod
    def _api(given: str | None) -> str:
        """``--api``, checked like DRF_M2M_AUTH['API']; else this project's own API."""
        if given is not None:
            try:
                return str(api_identifier(given, None))  # type: ignore[arg-type]  # the context is not read
            except Invalid as exc:
                raise CommandError(f"--api {exc.message} (nothing was changed)") from None
        from django.core.exceptions import ImproperlyConfigured

        from drf_m2m_auth.conf import m2m_settings

        try:
            return m2m_settings.API
        except ImproperlyConfigured as exc:
            raise CommandError(
                f"say which API the grants are for with --api: this project's DRF_M2M_AUTH['API'] "
                f"cannot be determined ({exc}) (nothing was changed)"
            ) from None

    def _list(self, client_id: str, given_issuer: str | None) -> None:
        try:
            issuer = resolve_issuer(given_issuer)
        except ValueError as exc:
            raise CommandError(f"{exc} Give --issuer.") from None
        client = Client.objects.filter(issuer=issuer, client_id=client_id).first()
        if client is None:
            raise CommandError(f"unknown client id {escape(client_id, 80)!r} at issuer {issuer!r}")
        rows = list(client.grants.order_by("api", "resource").values_list("api", "resource"))
        if self.json:
            grants = [{"api": api, "resource": resource} for api, resource in rows]
            self.stdout.write(
                json.dumps(
                    {"issuer": issuer, "client_id": client_id, "is_active": client.is_active, "grants": grants},
                    indent=2,
                )
            )
            return
        state = "active" if client.is_active else "inactive (every API rejects its tokens)"
        self.stdout.write(f"client {escape(client_id)!r} of {issuer}: {state}")
        if not rows:
            self.stdout.write("  no grants at any API")
        for api, resource in rows:
            self.stdout.write(f"  {escape(api)}: {resource}")

    def _validate(self, client_id, resources, remove, create, name) -> None:
        if not resources:
            raise CommandError("name at least one RESOURCE (or give --list)")
        problem = client_id_problem(client_id)
        if problem is not None:
            raise CommandError(f"{problem}: {escape(client_id, 80)!r} (nothing was changed)")
        if client_id.endswith("@clients"):
            raise CommandError(
                f"give the client id without Auth0's '@clients' suffix: {client_id[: -len('@clients')]!r}"
            )
        if name and not create:
            raise CommandError("--name goes with --create")
        if remove and create:
            raise CommandError("--remove and --create together make no sense")
        seen = set()
        for resource in resources:
            try:
                validate_resource(resource)
            except ValidationError:
                raise CommandError(
                    f"resource {resource!r} is malformed: 1-100 characters, letters, digits and _ . : / - (no spaces)"
                ) from None
            if resource in seen:
                raise CommandError(f"resource {resource!r} is given twice")
            seen.add(resource)

    def _say(self, event: dict, text: str, changed: bool = True) -> None:
        self.events.append({**event, "changed": changed})
        if not self.json:
            self.stdout.write(self.style.SUCCESS(text) if changed else text)

    def _add(self, client, api, resources, have) -> None:
        new = [r for r in resources if r not in have]
        ResourceGrant.objects.bulk_create([ResourceGrant(client=client, api=api, resource=r) for r in new])
        at = f"at API {api!r}"
        for resource in resources:
            event = {"action": "grant", "api": api, "resource": resource}
            if resource in have:
                self._say(event, f"client {client.client_id!r}: already granted {resource!r} {at}", changed=False)
            else:
                audit.info("granted %s at API %s to client %s", resource, escape(api), escape(client.client_id))
                self._say(event, f"client {client.client_id!r}: granted {resource!r} {at}")

    def _remove(self, client, api, resources, have) -> None:
        ResourceGrant.objects.filter(client=client, api=api, resource__in=resources).delete()
        at = f"at API {api!r}"
        for resource in resources:
            event = {"action": "remove", "api": api, "resource": resource}
            if resource in have:
                audit.info("removed grant %s at API %s from client %s", resource, escape(api), escape(client.client_id))
                self._say(event, f"client {client.client_id!r}: removed {resource!r} {at}")
            else:
                self._say(event, f"client {client.client_id!r}: had no grant for {resource!r} {at}", changed=False)
