"""The issuer's Token Status Lists (draft-ietf-oauth-status-list-20): slots for new tokens, signed lists.

Each minted token takes the next slot: list ``1 + n // size``, index ``n % size`` where ``n`` is
its row's sequence number, so two concurrent mints never share a slot. Lists use 2 bits per token
(VALID 0, INVALID 1, SUSPENDED 2) and are served at ``statuslists/<n>`` as a Status List Token
signed with the issuer's current key, with ``ttl`` (how soon a resource server looks again).
"""

from __future__ import annotations

import base64
import datetime as dt
import time
import zlib

from django.conf import settings
from django.db import transaction
from joserfc import jwt

from . import keys
from .conf import issuer_url
from .models import IssuedToken, OAuthClient

BITS = 2
MEDIA_TYPE = "application/statuslist+jwt"


def enabled() -> bool:
    """``LOCAL_ISSUER_STATUS_LISTS`` (default True): give every minted token a status list slot."""
    return bool(getattr(settings, "LOCAL_ISSUER_STATUS_LISTS", True))


def list_size() -> int:
    """Tokens per list (``LOCAL_ISSUER_STATUS_LIST_SIZE``, default 4096: 1 KiB before compression)."""
    return int(getattr(settings, "LOCAL_ISSUER_STATUS_LIST_SIZE", 4096))


def list_ttl() -> int:
    """Seconds a resource server may keep a list (``LOCAL_ISSUER_STATUS_LIST_TTL``, default 5)."""
    return int(getattr(settings, "LOCAL_ISSUER_STATUS_LIST_TTL", 5))


def list_uri(number: int) -> str:
    return f"{issuer_url()}statuslists/{number}"


@transaction.atomic
def allocate(jti: str, client: OAuthClient, audience: str, iat: int, exp: int) -> dict:
    """Record a new token and return its ``status`` claim."""
    row = IssuedToken.objects.create(
        jti=jti,
        client=client,
        audience=audience,
        issued_at=dt.datetime.fromtimestamp(iat, dt.timezone.utc),
        expires_at=dt.datetime.fromtimestamp(exp, dt.timezone.utc),
    )
    n = row.pk - 1
    row.list_number, row.idx = 1 + n // list_size(), n % list_size()
    row.save(update_fields=["list_number", "idx"])
    return {"status_list": {"idx": row.idx, "uri": list_uri(row.list_number)}}


def set_status(jti: str, status: int) -> IssuedToken:
    """Change one token's status; IssuedToken.DoesNotExist for an unknown jti."""
    row = IssuedToken.objects.get(jti=jti)
    row.status = status
    row.save(update_fields=["status"])
    return row


def encode(number: int) -> bytes:
    """The list's byte array: 2-bit statuses packed from each byte's least significant bit."""
    size, per_byte = list_size(), 8 // BITS
    data = bytearray(size // per_byte)
    rows = IssuedToken.objects.filter(list_number=number).exclude(status=IssuedToken.VALID)
    for idx, status in rows.values_list("idx", "status"):
        data[idx // per_byte] |= status << ((idx % per_byte) * BITS)
    return bytes(data)


def exists(number: int) -> bool:
    return number >= 1 and IssuedToken.objects.filter(list_number=number).exists()


def status_list_token(number: int, *, now: int | None = None) -> str:
    """The signed Status List Token of list ``number`` (section 5.1)."""
    now = int(time.time()) if now is None else now
    lst = base64.urlsafe_b64encode(zlib.compress(encode(number), 9)).rstrip(b"=").decode()
    kid, key = keys.signing_key()
    header = {"alg": keys.ALG, "typ": "statuslist+jwt", "kid": kid}
    claims = {
        "sub": list_uri(number),
        "iss": issuer_url(),
        "iat": now,
        "exp": now + 3600,
        "ttl": list_ttl(),
        "status_list": {"bits": BITS, "lst": lst},
    }
    return jwt.encode(header, claims, key, algorithms=[keys.ALG])
