"""Rotate the local issuer's signing key."""

from django.core.management.base import BaseCommand

from testproject.issuer import keys


class Command(BaseCommand):
    help = (
        "Rotate the signing key: the pre-published next key starts signing, the old one stays in "
        "the JWKS until its tokens expire. --revoke-current: emergency rotation to a never-published "
        "key, withdrawing the old one at once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--revoke-current",
            action="store_true",
            help="withdraw the current key from the JWKS now (as after a compromise)",
        )

    def handle(self, *args, revoke_current, **options):
        old, new = keys.rotate(revoke_current=revoke_current)
        self.stdout.write(f"Rotated signing key: {old} -> {new}" + ("  (old key revoked)" if revoke_current else ""))
