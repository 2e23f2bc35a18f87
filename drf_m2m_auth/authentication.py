"""M2MJWTAuthentication: Authorization: Bearer <jwt> -> (ServiceClient, AccessToken)."""

from __future__ import annotations

import logging
from typing import Any

from rest_framework.authentication import BaseAuthentication

from .conf import get_verifier, m2m_settings
from .errors import InvalidRequest, InvalidToken, M2MAuthError
from .exceptions import bearer_challenge, to_api_exception
from .principal import AccessToken, ServiceClient
from .signals import token_accepted, token_rejected

ERROR_ATTR = "_m2m_auth_error"
logger = logging.getLogger("drf_m2m_auth.authentication")
_revocation: Any = None  # drf_m2m_auth.revocation, imported on first use (it imports models)


class M2MJWTAuthentication(BaseAuthentication):
    """Authenticate service-to-service calls with an OAuth 2.0 JWT access token (RFC 9068).

    List it first in ``authentication_classes``: DRF builds the 401's WWW-Authenticate header
    from the first authenticator only.
    """

    keyword = "bearer"

    def authenticate(self, request: Any) -> tuple[ServiceClient, AccessToken] | None:
        raw = self.get_raw_token(request)
        if raw is None:
            return None
        try:
            client, token = self.validate(raw)
            self.check_client_state(token)
        except M2MAuthError as exc:
            setattr(request, ERROR_ATTR, exc)
            self.on_rejected(request, exc)
            raise to_api_exception(exc, self.get_realm()) from exc
        self.on_accepted(request, token)
        return client, token

    def get_raw_token(self, request: Any) -> str | None:
        """The token from the Authorization header, or None for no header / another scheme.

        Only the header is read, never the query string or the body (RFC 6750 2.2 / 2.3 are
        optional and leak tokens into logs). META is read directly: request.headers builds a
        copy of every header on first use, which costs more than the rest of a cache hit.
        """
        header = getattr(request, "_request", request).META.get("HTTP_AUTHORIZATION")
        if not header:
            return None
        if header[:7].lower() == "bearer ":
            token = header[7:]
            if token and " " not in token:  # the common case, without splitting a long string
                return token
        parts = header.split()
        if not parts or parts[0].lower() != self.keyword:
            return None  # another scheme: let the next authenticator try
        if len(parts) != 2:
            error = InvalidRequest("The Authorization header must be 'Bearer <token>'.", reason="bad_header")
            setattr(request, ERROR_ATTR, error)
            self.on_rejected(request, error)
            raise to_api_exception(error, self.get_realm())
        return parts[1]

    def validate(self, raw: str) -> tuple[ServiceClient, AccessToken]:
        """Verify the JWT (signature, header rules, claims, scopes); a hook for subclasses."""
        if not raw.isascii():
            raise InvalidToken("The access token is not a JWS in compact form.", reason="malformed")
        return get_verifier().verify_principal(raw)

    def check_client_state(self, token: AccessToken) -> None:
        """Is this client still active, and this token not revoked? Answered from process memory."""
        global _revocation
        if _revocation is None:
            from . import revocation  # imports models lazily (STYLE 8)

            _revocation = revocation
        _revocation.check(token)

    def get_realm(self) -> str:
        return str(m2m_settings.REALM)

    def authenticate_header(self, request: Any) -> str:
        error = getattr(request, ERROR_ATTR, None)
        if isinstance(error, InvalidToken):
            return bearer_challenge(self.get_realm(), error=error.error, description=error.description)
        # No credentials at all: RFC 6750 3.1 says no error code in this case.
        return bearer_challenge(self.get_realm())

    def on_accepted(self, request: Any, token: AccessToken) -> None:
        if token_accepted.receivers:
            token_accepted.send(sender=type(self), request=request, token=token)

    def on_rejected(self, request: Any, error: M2MAuthError) -> None:
        logger.info(
            "token rejected: reason=%s claim=%s", error.reason, error.claim)
        if token_rejected.receivers:
            token_rejected.send(sender=type(self), request=request, reason=error.reason, error=error)
