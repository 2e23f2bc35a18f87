"""Mint an access token directly, bypassing client authentication: a testing tool for operators."""

import time

from django.core.management.base import BaseCommand, CommandError

from testproject.issuer.models import Api, OAuthClient
from testproject.issuer.server import mint_access_token


class Command(BaseCommand):
    help = (
        "Print a signed access token for CLIENT_ID and AUDIENCE without going through oauth/token; "
        "--expired backdates it. For tests and the demo only."
    )

    def add_arguments(self, parser):
        parser.add_argument("client_id")
        parser.add_argument("audience")
        parser.add_argument("--scope", default="", help="space-separated scopes (default: none)")
        parser.add_argument("--lifetime", type=int, default=None, help="seconds (default: the API's)")
        parser.add_argument("--expired", action="store_true", help="issued two hours ago, expired an hour ago")

    def handle(self, *args, client_id, audience, scope, lifetime, expired, **options):
        client = OAuthClient.objects.filter(client_id=client_id).first()
        api = Api.objects.filter(identifier=audience).first()
        if client is None or api is None:
            raise CommandError("Unknown client or audience")
        now = int(time.time())
        if expired:
            now, lifetime = now - 7200, 3600
        token, _, _ = mint_access_token(client, api, scope.split(), now=now, lifetime=lifetime)
        self.stdout.write(token)
