"""The issuer's signing keys: generate, publish (JWKS), sign with the current one, rotate.

Rotation works as Auth0's does: a *next* key is always published in the JWKS before it signs
anything, so a resource server that cached the JWKS already knows the key a rotation switches to.
An emergency rotation (``revoke_current=True``) instead replaces the current key with one nobody
has seen and stops publishing the old one: resource servers must refetch on the unknown ``kid``.
"""

from __future__ import annotations

import datetime as dt
import json
import threading

from django.db import transaction
from django.utils import timezone
from joserfc.jwk import RSAKey

from .conf import retired_key_grace
from .models import SigningKey

ALG = "RS256"
_lock = threading.Lock()  # one process generating the first keys at a time


def _generate(state: str) -> SigningKey:
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": ALG})
    kid = key.thumbprint()  # RFC 7638: stable, derived from the public key
    return SigningKey.objects.create(kid=kid, state=state, private_jwk=json.dumps(key.as_dict(private=True, kid=kid)))


def ensure_keys() -> None:
    """Make sure there is a current key and a next key."""
    with _lock, transaction.atomic():
        states = set(
            SigningKey.objects.filter(state__in=[SigningKey.CURRENT, SigningKey.NEXT]).values_list("state", flat=True)
        )
        if SigningKey.CURRENT not in states:
            _generate(SigningKey.CURRENT)
        if SigningKey.NEXT not in states:
            _generate(SigningKey.NEXT)


def signing_key() -> tuple[str, RSAKey]:
    """(kid, private key) of the current key."""
    row = SigningKey.objects.filter(state=SigningKey.CURRENT).first()
    if row is None:
        ensure_keys()
        row = SigningKey.objects.get(state=SigningKey.CURRENT)
    return row.kid, RSAKey.import_key(json.loads(row.private_jwk))


def published() -> list[SigningKey]:
    """Keys in the JWKS: current, next, and retired keys whose tokens may still be unexpired."""
    ensure_keys()
    cutoff = timezone.now() - dt.timedelta(seconds=retired_key_grace())
    rows = SigningKey.objects.filter(state__in=[SigningKey.CURRENT, SigningKey.NEXT, SigningKey.RETIRED])
    return [row for row in rows if row.state != SigningKey.RETIRED or row.retired_at > cutoff]


def jwks() -> dict:
    """The public JWKS document: never a private member."""
    keys = []
    for row in published():
        public = RSAKey.import_key(json.loads(row.private_jwk)).as_dict(private=False)
        keys.append(
            {"kty": public["kty"], "use": "sig", "alg": ALG, "kid": row.kid, "n": public["n"], "e": public["e"]}
        )
    return {"keys": keys}


def rotate(*, revoke_current: bool = False) -> tuple[str, str]:
    """Switch signing to the next key; return (old kid, new kid).

    The old key stays published (retired) until the tokens it signed expire, unless
    ``revoke_current``: then it is withdrawn at once and the new current key is a fresh one that
    was never published, as after a key compromise.
    """
    ensure_keys()
    with _lock, transaction.atomic():
        old = SigningKey.objects.select_for_update().get(state=SigningKey.CURRENT)
        old.state = SigningKey.REVOKED if revoke_current else SigningKey.RETIRED
        old.retired_at = timezone.now()
        old.save(update_fields=["state", "retired_at"])
        if revoke_current:
            new = _generate(SigningKey.CURRENT)
        else:
            new = SigningKey.objects.select_for_update().get(state=SigningKey.NEXT)
            new.state = SigningKey.CURRENT
            new.save(update_fields=["state"])
            _generate(SigningKey.NEXT)
    return old.kid, new.kid
