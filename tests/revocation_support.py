"""What the revocation tests share: a verified token as the request path hands it to the revocation
check, and the reason a check refuses it with."""

from __future__ import annotations

import time
from typing import Any

from drf_m2m_auth import revocation
from drf_m2m_auth.errors import InvalidToken
from drf_m2m_auth.principal import AccessToken


def token(client_id="svc-a", *, issuer=None, iat=None, jti=None, exp_in=3600) -> AccessToken:
    """A verified token of ``client_id`` at ``issuer`` (default: the one configured issuer)."""
    now = time.time()
    claims = {
        "sub": f"{client_id}@clients",
        "iss": issuer or revocation.only_issuer(),
        "aud": "api",
        "iat": now if iat is None else iat,
        "exp": now + exp_in,
    }
    if jti:
        claims["jti"] = jti
    return AccessToken(claims, frozenset({"read:orders"}))


def reason_of(tok: AccessToken, checker: Any = revocation) -> str | None:
    """The reason ``checker.check`` (the revocation module, or a RevocationCache) refuses ``tok``; None: passed."""
    try:
        checker.check(tok)
    except InvalidToken as exc:
        assert exc.error == "invalid_token"
        return exc.reason
    return None
