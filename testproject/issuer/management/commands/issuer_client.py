"""Manage the local issuer's OAuth clients: create (secret shown once), grant, list, deactivate."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from testproject.issuer.models import Api, ClientGrant, OAuthClient


class Command(BaseCommand):
    help = "Manage machine-to-machine clients of the local issuer."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a client; prints its id and secret once")
        create.add_argument("name")
        create.add_argument("--client-id", default=None)
        create.add_argument("--secret", default=None, help="use this secret (not echoed) instead of a random one")
        create.add_argument(
            "--grant",
            action="append",
            default=[],
            metavar="AUDIENCE=SCOPE[,SCOPE]",
            help="authorize the client for an API with these scopes (repeatable)",
        )
        grant = sub.add_parser("grant", help="authorize a client for an API with scopes")
        grant.add_argument("client_id")
        grant.add_argument("audience")
        grant.add_argument("scopes", nargs="*")
        sub.add_parser("list", help="list clients and their grants")
        for name, text in (
            ("deactivate", "the client can no longer get tokens"),
            ("activate", "undo deactivate"),
            ("reset-secret", "replace the secret; prints the new one once"),
        ):
            action = sub.add_parser(name, help=text)
            action.add_argument("client_id")

    def handle(self, *args, action, **options):
        getattr(self, "do_" + action.replace("-", "_"))(**options)

    def _client(self, client_id) -> OAuthClient:
        try:
            return OAuthClient.objects.get(client_id=client_id)
        except OAuthClient.DoesNotExist:
            raise CommandError(f"No client {client_id!r}") from None

    @staticmethod
    def _grant(client, audience, scopes):
        api = Api.objects.filter(identifier=audience).first()
        if api is None:
            raise CommandError(f"No API {audience!r}: create it with issuer_api first")
        unknown = sorted(set(scopes) - set(api.scope_list))
        if unknown:
            raise CommandError(f"API {audience} does not define scope(s): {', '.join(unknown)}")
        ClientGrant.objects.update_or_create(client=client, api=api, defaults={"scopes": " ".join(sorted(set(scopes)))})

    def do_create(self, *, name, client_id, secret, grant, **options):
        with transaction.atomic():
            client = OAuthClient(name=name)
            if client_id:
                client.client_id = client_id
            if OAuthClient.objects.filter(client_id=client.client_id).exists():
                raise CommandError(f"Client {client.client_id!r} exists")
            shown = client.set_secret(secret)
            client.save()
            for spec in grant:
                audience, _, scopes = spec.partition("=")
                self._grant(client, audience, scopes.replace(",", " ").split())
        self.stdout.write(f"Created client {client.name}\n  client_id:     {client.client_id}")
        if secret is None:
            self.stdout.write(f"  client_secret: {shown}   (shown once; only its digest is stored)")

    def do_grant(self, *, client_id, audience, scopes, **options):
        self._grant(self._client(client_id), audience, scopes)
        self.stdout.write(f"Granted {client_id} -> {audience} [{' '.join(sorted(scopes))}]")

    def do_list(self, **options):
        for client in OAuthClient.objects.prefetch_related("grants__api"):
            state = "active" if client.is_active else "inactive"
            self.stdout.write(f"{client.client_id}  {client.name}  ({state})")
            for grant in client.grants.all():
                self.stdout.write(f"    {grant.api.identifier}  [{grant.scopes}]")

    def do_deactivate(self, *, client_id, **options):
        OAuthClient.objects.filter(pk=self._client(client_id).pk).update(is_active=False)
        self.stdout.write(f"Deactivated {client_id}: the token endpoint now answers invalid_client")

    def do_activate(self, *, client_id, **options):
        OAuthClient.objects.filter(pk=self._client(client_id).pk).update(is_active=True)
        self.stdout.write(f"Activated {client_id}")

    def do_reset_secret(self, *, client_id, **options):
        client = self._client(client_id)
        secret = client.set_secret()
        client.save(update_fields=["secret_hash"])
        self.stdout.write(f"New secret for {client_id}: {secret}   (shown once)")
