"""Where the local issuer says it lives: its ``iss`` and the URLs in its discovery document."""

from __future__ import annotations

from django.conf import settings

# Auth0's default access-token lifetime for an API (its dashboard's "Token Expiration").
DEFAULT_TOKEN_LIFETIME = 86400


def issuer_url() -> str:
    """The issuer identifier, with Auth0's trailing slash.

    ``LOCAL_ISSUER_URL`` if set, else the (first) ``DRF_M2M_AUTH["ISSUER"]``: in the test project
    one setting names the issuer both for the issuer itself and for the API that trusts it.
    """
    url = getattr(settings, "LOCAL_ISSUER_URL", None)
    if not url:
        configured = getattr(settings, "DRF_M2M_AUTH", {}).get("ISSUER")
        url = configured[0] if isinstance(configured, (list, tuple)) else configured
    if not url:
        raise RuntimeError("Set LOCAL_ISSUER_URL (or DRF_M2M_AUTH['ISSUER']) for the local issuer")
    return url if url.endswith("/") else url + "/"


def retired_key_grace() -> int:
    """Seconds a retired key stays in the JWKS: tokens it signed stay verifiable until they expire."""
    return int(getattr(settings, "LOCAL_ISSUER_RETIRED_KEY_GRACE", DEFAULT_TOKEN_LIFETIME))
