"""The DRF side of errors.py: RFC 6750 challenges and the APIExceptions that carry them."""

from __future__ import annotations

import re

from rest_framework import exceptions, status

from .errors import InsufficientScope, InvalidRequest, M2MAuthError, ServiceUnavailable

__all__ = [
    "bearer_challenge",
    "dpop_challenge",
    "InvalidAuthorizationHeader",
    "TemporarilyUnavailable",
    "M2MPermissionDenied",
    "InsufficientScopeDenied",
    "to_api_exception",
]

_UNSAFE = re.compile(r"[^\x20-\x7e]")


def _quote(value: str) -> str:
    # RFC 7230 quoted-string: escape backslash and double quote; drop control and non-ASCII
    # characters so nothing can break out of the header (RFC 6750 3: error_description is %x20-7E).
    value = _UNSAFE.sub("", str(value))
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def bearer_challenge(
    realm: str = "api",
    *,
    error: str | None = None,
    description: str | None = None,
    scope: str | None = None,
    scheme: str = "Bearer",
) -> str:
    """``Bearer realm="api", error="invalid_token", error_description="..."`` (RFC 6750 3)."""
    parts = [f"realm={_quote(realm)}"]
    if error:
        parts.append(f"error={_quote(error)}")
    if description:
        parts.append(f"error_description={_quote(description)}")
    if scope:
        parts.append(f"scope={_quote(scope)}")
    return f"{scheme} " + ", ".join(parts)


def dpop_challenge(realm: str = "api", *, algs: str, error: str | None = None, description: str | None = None) -> str:
    """``DPoP realm="api", error="invalid_dpop_proof", ..., algs="ES256 PS256"`` (RFC 9449 7.1)."""
    return bearer_challenge(realm, error=error, description=description, scheme="DPoP") + f", algs={_quote(algs)}"


class InvalidAuthorizationHeader(exceptions.APIException):
    """RFC 6750 3.1 invalid_request: a malformed Authorization header is a 400."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_request"

    def __init__(self, detail: str, auth_header: str):
        super().__init__(detail, code="invalid_request")
        self.auth_header = auth_header


class TemporarilyUnavailable(exceptions.APIException):
    """503 + Retry-After: a dependency (keys, revocation state, the settings) is unusable; not the token's fault."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "temporarily_unavailable"

    def __init__(self, detail: str, wait: int):
        super().__init__(detail, code="temporarily_unavailable")
        self.wait = wait  # DRF's exception handler turns .wait into Retry-After


class M2MPermissionDenied(exceptions.PermissionDenied):
    """A 403 that may carry a WWW-Authenticate header (DRF copies exc.auth_header)."""

    def __init__(self, detail: str, *, code: str = "permission_denied", auth_header: str | None = None):
        super().__init__(detail, code=code)
        if auth_header:
            self.auth_header = auth_header


class InsufficientScopeDenied(M2MPermissionDenied):
    def __init__(self, needed: frozenset[str], realm: str = "api"):
        error = InsufficientScope(needed)
        super().__init__(
            error.description,
            code="insufficient_scope",
            auth_header=bearer_challenge(realm, error="insufficient_scope", scope=" ".join(sorted(needed))),
        )
        self.needed = error.needed


def to_api_exception(exc: M2MAuthError, realm: str) -> exceptions.APIException:
    """Translate the core's exception tree to DRF, once, at the boundary."""
    if isinstance(exc, ServiceUnavailable):
        return TemporarilyUnavailable(exc.description, exc.retry_after)
    if isinstance(exc, InvalidRequest):
        return InvalidAuthorizationHeader(
            exc.description, bearer_challenge(realm, error=exc.error, description=exc.description)
        )
    return exceptions.AuthenticationFailed(exc.description, code=exc.error)
