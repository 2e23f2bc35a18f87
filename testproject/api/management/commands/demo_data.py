"""Load the demo's cast into this project's database, to explore it with runserver."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from testproject.api import scenario as sc
from testproject.api.seed import apply as seed_service_b
from testproject.issuer.conf import issuer_url
from testproject.issuer.seed import apply as seed_issuer


class Command(BaseCommand):
    help = (
        "Create the demo's APIs, client service-a (with a new secret, printed once) and grants at the "
        "local issuer and at service-b, and an 'admin' superuser if there is none; then explore with "
        "runserver. Run migrate first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-superuser", action="store_true")

    def handle(self, *args, no_superuser, **options):
        secret = secrets.token_urlsafe(24)
        spec = sc.seed(secret)
        seed_issuer(spec["issuer"])
        seed_service_b(spec["service_b"])
        base = issuer_url()
        site = base.rsplit("/issuer/", 1)[0] + "/"
        out = self.stdout.write
        out(f"Issuer {base} (local stand-in for Auth0; not for production)")
        out(f"Client {sc.SERVICE_A}, secret (shown once): {secret}")
        User = get_user_model()
        if not no_superuser and not User.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser("admin", "", password)
            out(f"Admin {site}admin/  user admin, password (shown once): {password}")
        audience = settings.DRF_M2M_AUTH.get("AUDIENCE", sc.SERVICE_B_AUDIENCE)
        out("\nThen, with `python testproject/manage.py runserver` running:")
        out(
            f"  TOKEN=$(curl -s -d grant_type=client_credentials -d client_id={sc.SERVICE_A} "
            f"-d client_secret='{secret}' -d audience={audience} {base}oauth/token "
            "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
        )
        out(f'  curl -s -H "Authorization: Bearer $TOKEN" {site}data/')
        out(f"  curl -s {base}.well-known/openid-configuration")
