"""The ``requests`` auth object of the calling side. Pure: no Django.

Internal module: import :class:`BearerAuth` from :mod:`drf_m2m_auth.client` (``creds.auth``).
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any, Protocol

from requests import PreparedRequest, Response
from requests.auth import AuthBase
from requests.cookies import extract_cookies_to_jar

from .token_endpoint import Token, TokenRequestError

__all__ = ["BearerAuth"]

logger = logging.getLogger("drf_m2m_auth.client")

_INVALID_TOKEN = re.compile(r'^\s*(?:bearer|dpop)\b.*\berror\s*=\s*"?invalid_token\b', re.I | re.S)
_USE_DPOP_NONCE = re.compile(r'\bdpop\b.*\berror\s*=\s*"?use_dpop_nonce\b', re.I | re.S)


class Credentials(Protocol):
    """What BearerAuth needs of a ClientCredentials (no import of client.py: no cycle)."""

    def current_token(self) -> Token: ...
    def invalidate(self, access_token: str) -> bool: ...
    def dpop_proof(self, method: str, url: str, access_token: str | None = None) -> str: ...
    def remember_nonce(self, url: str, response: Any) -> bool: ...


class BearerAuth(AuthBase):
    """``requests`` auth: sends ``Authorization: Bearer`` (or ``DPoP`` with a fresh proof for a
    DPoP-bound token); on a 401 ``invalid_token`` renews the token (see ``reject_cooldown``) and
    resends once; on a 401 ``use_dpop_nonce`` resends once with the nonce (only bodies that can be
    sent twice)."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.credentials!r})"

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        self._authorize(request, self.credentials.current_token())
        if request.body is None or isinstance(request.body, (bytes, str)):
            request.register_hook("response", self._retry_on_invalid_token)
        return request

    def _authorize(self, request: PreparedRequest, token: Token) -> None:
        if token.token_type == "DPoP":  # noqa: S105 -- a scheme; only ever set when we hold a DPoP key
            request.headers["Authorization"] = f"DPoP {token.access_token}"
            request.headers["DPoP"] = self.credentials.dpop_proof(
                str(request.method), str(request.url), token.access_token
            )
        else:
            request.headers["Authorization"] = f"Bearer {token.access_token}"

    def _retry_on_invalid_token(self, response: Response, **kwargs: Any) -> Response:
        header = response.request.headers.get("Authorization", "")
        challenge = response.headers.get("WWW-Authenticate", "")
        fresh_nonce = self.credentials.remember_nonce(str(response.request.url), response)
        scheme, _, sent = header.partition(" ")
        # No Authorization header means requests stripped it on a cross-host redirect: never re-add it.
        if response.status_code != 401 or scheme not in ("Bearer", "DPoP") or not sent:
            return response
        if scheme == "DPoP" and fresh_nonce and _USE_DPOP_NONCE.search(challenge):
            return self._resend(response, Token(sent, math.inf, 0.0, "DPoP"), **kwargs)
        if not _INVALID_TOKEN.match(challenge) or not self.credentials.invalidate(sent):
            return response
        try:
            fresh = self.credentials.current_token()
        except TokenRequestError as exc:
            logger.warning("could not replace a rejected token: %s", exc)
            return response
        if fresh.access_token == sent:
            return response
        return self._resend(response, fresh, **kwargs)

    def _resend(self, response: Response, token: Token, **kwargs: Any) -> Response:
        # The same resend as requests' HTTPDigestAuth; connection.send runs no hooks: no loop.
        response.content  # noqa: B018 -- drain so the connection can be reused
        response.close()
        retry = response.request.copy()
        extract_cookies_to_jar(retry._cookies, response.request, response.raw)  # type: ignore[attr-defined]
        retry.prepare_cookies(retry._cookies)  # type: ignore[attr-defined]
        self._authorize(retry, token)  # a fresh proof: a new jti, the latest nonce (RFC 9449 7.3)
        second = response.connection.send(retry, **kwargs)
        self.credentials.remember_nonce(str(retry.url), second)
        second.history.append(response)
        second.request = retry
        return second
