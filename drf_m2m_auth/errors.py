"""One exception tree for drf_m2m_auth; pure Python, translated to HTTP once at the DRF boundary."""

from __future__ import annotations

__all__ = [
    "ReplayCheckUnavailable",
    "M2MAuthError",
    "InvalidRequest",
    "InvalidToken",
    "InvalidDPoPProof",
    "UseDPoPNonce",
    "InsufficientScope",
    "ServiceUnavailable",
    "KeysUnavailable",
    "RevocationUnavailable",
    "ConfigurationInvalid",
    "JWKSError",
]


class M2MAuthError(Exception):
    """Base error: ``error`` is an RFC 6750 error code, ``description`` a short human reason.

    ``reason`` is a stable machine code (for logs, metrics and signals); ``claim`` names the
    offending claim or header parameter when there is one. None of them ever holds a token.
    """

    error = "invalid_request"
    status_code = 400

    def __init__(self, description: str, *, reason: str = "invalid", claim: str | None = None):
        super().__init__(description)
        self.description = description
        self.reason = reason
        self.claim = claim

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, description={self.description!r})"


class InvalidRequest(M2MAuthError):
    """The request itself is malformed (RFC 6750 3.1 invalid_request): 400."""


class InvalidToken(M2MAuthError):
    """The access token is malformed, expired, revoked, or fails verification: 401."""

    error = "invalid_token"
    status_code = 401


class InvalidDPoPProof(InvalidToken):
    """The DPoP proof fails a check of RFC 9449 section 4.3: 401 ``invalid_dpop_proof`` (7.1)."""

    error = "invalid_dpop_proof"


class UseDPoPNonce(InvalidDPoPProof):
    """The proof lacks the server's current nonce (RFC 9449 9): 401 ``use_dpop_nonce`` + DPoP-Nonce."""

    error = "use_dpop_nonce"

    def __init__(self, description: str, *, nonce: str):
        super().__init__(description, reason="use_dpop_nonce", claim="nonce")
        self.nonce = nonce


class InsufficientScope(M2MAuthError):
    """The token is valid but lacks the scopes the endpoint needs: 403 (RFC 6750 3.1)."""

    error = "insufficient_scope"
    status_code = 403

    def __init__(self, needed: frozenset[str] | set[str], *, description: str | None = None):
        self.needed = frozenset(needed)
        super().__init__(
            description or "The access token does not grant the scopes this endpoint requires.",
            reason="insufficient_scope",
        )


class ServiceUnavailable(M2MAuthError):
    """Not the token's fault, so not an invalid_token: a dependency is down, the client should retry.

    503 with ``Retry-After: retry_after`` seconds. ``reason`` says which dependency.
    """

    error = "temporarily_unavailable"
    status_code = 503
    default_reason = "service_unavailable"

    def __init__(self, description: str, *, retry_after: int = 5, reason: str | None = None):
        super().__init__(description, reason=reason or self.default_reason)
        self.retry_after = retry_after


class KeysUnavailable(ServiceUnavailable):
    """No signing keys at all can be obtained for the issuer (cold start while it is down): 503."""

    default_reason = "keys_unavailable"


class RevocationUnavailable(ServiceUnavailable):
    """The revocation state cannot be read (the database is unreachable) and none is loaded: 503.

    Not a key outage: its own reason code, so logs and metrics point at the database.
    """

    default_reason = "revocation_unavailable"

    def __init__(
        self,
        description: str = "Revocation state is temporarily unavailable.",
        *,
        retry_after: int = 2,
        reason: str | None = None,
    ):
        super().__init__(description, retry_after=retry_after, reason=reason)


class ConfigurationInvalid(ServiceUnavailable):
    """DRF_M2M_AUTH holds an invalid value: every M2M request is a 503 until it is fixed.

    The description says only that; the log line (once per settings change) names the keys.
    """

    default_reason = "settings_invalid"

    def __init__(self, description: str, *, retry_after: int = 30, reason: str | None = None):
        super().__init__(description, retry_after=retry_after, reason=reason)


class ReplayCheckUnavailable(ServiceUnavailable):
    """A DPoP proof's single use cannot be checked (shared cache down with
    ``DPOP_REPLAY_CACHE_DOWN="reject"``, or the in-process replay store full): 503 + Retry-After.

    Not the proof's fault: the client should retry.
    """

    default_reason = "dpop_replay_unavailable"

    def __init__(self, description: str, *, retry_after: int = 5, reason: str | None = None):
        super().__init__(description, retry_after=retry_after, reason=reason)


class JWKSError(Exception):
    """Fetching or parsing a JWKS (or discovery document) failed. Internal to jwks.py callers."""
