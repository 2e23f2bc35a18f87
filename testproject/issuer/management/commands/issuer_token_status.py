"""Change one issued token's status in the issuer's Token Status List: revoke, suspend, or make valid."""

import base64
import json

from django.core.management.base import BaseCommand, CommandError

from testproject.issuer import statuslists
from testproject.issuer.models import IssuedToken


def jti_of(token_or_jti: str) -> str:
    """A compact JWT's jti (read, not verified: it only names a row of this issuer), or the argument."""
    if token_or_jti.count(".") != 2:
        return token_or_jti
    try:
        payload = token_or_jti.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, UnicodeError) as exc:
        raise CommandError("Not a JWT this issuer can read") from exc
    if not isinstance(claims, dict) or not isinstance(claims.get("jti"), str):
        raise CommandError("The token has no jti")
    return claims["jti"]


class Command(BaseCommand):
    help = (
        "Set the status of one token minted by this issuer (given as the token or its jti) in its "
        "status list: --revoke (INVALID), --suspend (SUSPENDED) or --valid. APIs that check the "
        "list refuse a revoked or suspended token within the list's ttl."
    )

    def add_arguments(self, parser):
        parser.add_argument("token_or_jti")
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--revoke", action="store_const", dest="status", const=IssuedToken.INVALID)
        group.add_argument("--suspend", action="store_const", dest="status", const=IssuedToken.SUSPENDED)
        group.add_argument("--valid", action="store_const", dest="status", const=IssuedToken.VALID)

    def handle(self, *args, token_or_jti, status, **options):
        jti = jti_of(token_or_jti)
        try:
            row = statuslists.set_status(jti, status)
        except IssuedToken.DoesNotExist:
            raise CommandError(f"No token with jti {jti!r} was issued here") from None
        self.stdout.write(
            f"{row.jti}: {row.get_status_display()} in {statuslists.list_uri(row.list_number)} at idx {row.idx} "
            f"(APIs see it within {statuslists.list_ttl()} s)"
        )
