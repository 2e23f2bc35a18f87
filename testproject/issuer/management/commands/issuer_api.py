"""Create or update an API (an audience) at the local issuer."""

from django.core.management.base import BaseCommand

from testproject.issuer.models import Api


class Command(BaseCommand):
    help = "Create or update an API at the local issuer: its identifier is the tokens' aud."

    def add_arguments(self, parser):
        parser.add_argument("identifier", help="the audience, e.g. https://service-b.example")
        parser.add_argument("--name", default=None)
        parser.add_argument("--scopes", default=None, help='space-separated, e.g. "read:data write:data"')
        parser.add_argument("--lifetime", type=int, default=None, help="token lifetime, seconds")

    def handle(self, *args, identifier, name, scopes, lifetime, **options):
        api, created = Api.objects.get_or_create(identifier=identifier, defaults={"name": name or identifier})
        if name is not None:
            api.name = name
        if scopes is not None:
            api.scopes = " ".join(scopes.split())
        if lifetime is not None:
            api.token_lifetime = lifetime
        api.save()
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} API {api.identifier} scopes=[{api.scopes}] lifetime={api.token_lifetime}s")
