"""The OAuth 2.0 token endpoint exchange of the calling side (RFC 6749 4.4). Pure: no Django.

Internal to :mod:`drf_m2m_auth.client`, which re-exports the exceptions: import them from there.
One POST per attempt through authlib's session, never following a redirect (it would carry the
client secret wherever ``Location`` points); retries with backoff and full jitter for 5xx,
timeouts and 429 (honouring Retry-After); every non-2xx answer mapped to the exception tree; one
resend when a DPoP issuer asks for a nonce (RFC 9449 8).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.client import DEFAULT_HEADERS

__all__ = [
    "AccessDenied",
    "IssuerUnavailable",
    "MalformedTokenResponse",
    "RateLimited",
    "Token",
    "TokenEndpoint",
    "TokenRequestError",
    "check_token_url",
    "origin",
    "retry_after_seconds",
]

logger = logging.getLogger("drf_m2m_auth.client")

AUTH_METHODS = ("client_secret_post", "client_secret_basic")
_DENIED_ERRORS = {"access_denied", "invalid_client", "unauthorized_client", "invalid_scope", "invalid_grant"}
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class TokenRequestError(Exception):
    """No access token could be obtained. Never holds the client secret or a token.

    ``status`` is the issuer's HTTP status (None for network failures), ``error`` its OAuth
    error code when it sent one, ``retry_after`` the seconds it asked us to wait (429).
    """

    def __init__(
        self, message: str, *, status: int | None = None, error: str | None = None, retry_after: float | None = None
    ):
        super().__init__(message)
        self.status, self.error, self.retry_after = status, error, retry_after


class AccessDenied(TokenRequestError):
    """The issuer refused this client (bad credentials, no grant for the audience): not retried."""


class IssuerUnavailable(TokenRequestError):
    """The issuer is down, slow or failing (5xx, timeout, connection error) after the retries."""


class RateLimited(IssuerUnavailable):
    """The issuer answered 429 for longer than we are willing to wait."""


class MalformedTokenResponse(TokenRequestError):
    """The issuer answered 2xx without a usable access_token / expires_in."""


class _NonceRequired(TokenRequestError):
    """The issuer asked for a DPoP nonce (RFC 9449 8); the request is sent again once."""


@dataclass(frozen=True)
class Token:
    """An access token as obtained: wall-clock ``expires_at`` and ``obtained_at`` (seconds)."""

    access_token: str = field(repr=False)
    expires_at: float
    obtained_at: float
    token_type: str = "Bearer"  # noqa: S105 -- "DPoP" when bound to our DPoP key (RFC 9449 5)


class TokenEndpoint:
    """Obtains tokens from one token endpoint for one client; ``fetch(attempts)`` returns a Token.

    ``dpop`` is a DPoPKey or None; the DPoP nonces each server sent are remembered per origin
    (``nonces``) and used in the next proof to that server.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        params: Mapping[str, str],
        auth_method: str,
        timeout: float,
        backoff: float,
        max_wait: float,
        default_retry_after: float,
        clock: Callable[[], float],
        dpop: Any = None,
    ):
        check_token_url(token_url)
        if auth_method not in AUTH_METHODS:
            raise ValueError(f"auth_method must be one of {AUTH_METHODS}, not {auth_method!r}")
        self.token_url, self.client_id, self.params = token_url, client_id, dict(params)
        self.auth_method, self.timeout, self.backoff, self.max_wait = auth_method, timeout, backoff, max_wait
        self.default_retry_after, self.clock, self.dpop = default_retry_after, clock, dpop
        self._client_secret = client_secret  # only ever handed to authlib's session
        self.nonces: dict[str, str] = {}  # origin -> the latest DPoP-Nonce it sent (RFC 9449 8, 9)
        self.who = f"client_id={client_id!r} audience={params.get('audience')!r}"
        self.reset_session()

    def __repr__(self) -> str:
        return f"<TokenEndpoint {self.token_url!r} {self.who}>"

    def reset_session(self) -> None:
        """A fresh HTTP session (after a fork, pooled sockets must not be shared with the parent)."""
        self._session = OAuth2Session(self.client_id, self._client_secret, token_endpoint_auth_method=self.auth_method)
        self._session.register_compliance_hook("access_token_response", self._check_response)

    # -- DPoP (RFC 9449) ---------------------------------------------------------------------

    def dpop_proof(self, method: str, url: str, access_token: str | None = None) -> str:
        """A fresh DPoP proof for one request to ``url``, with the nonce that server last sent."""
        return self.dpop.proof(method, url, access_token=access_token, nonce=self.nonces.get(origin(url)))

    def remember_nonce(self, url: str, response: Any) -> bool:
        nonce = response.headers.get("DPoP-Nonce")
        if self.dpop is None or not nonce:
            return False
        self.nonces[origin(url)] = nonce
        return True

    # -- the exchange ------------------------------------------------------------------------

    def fetch(self, attempts: int) -> Token:
        """One token, trying up to ``attempts`` times while the issuer is unavailable."""
        for attempt in range(attempts):
            try:
                return self.request_token()
            except IssuerUnavailable as exc:
                wait = exc.retry_after
                if wait is None:
                    wait = random.uniform(0, min(self.backoff * 2**attempt, self.max_wait))  # noqa: S311 -- jitter
                if attempt + 1 >= attempts or wait > self.max_wait:
                    raise
                logger.warning(
                    "token request failed (%s); retry %d of %d in %.2fs", exc, attempt + 1, attempts - 1, wait
                )
                time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def request_token(self) -> Token:
        obtained_at = self.clock()  # before the request: never overestimate the lifetime
        try:
            data = self._token_response()
        except requests.RequestException as exc:
            raise IssuerUnavailable(
                f"token endpoint {self.token_url} unreachable ({type(exc).__name__}) for {self.who}"
            ) from exc
        except ValueError as exc:  # authlib: a 2xx body that is not a JSON object
            raise MalformedTokenResponse(
                f"token endpoint {self.token_url} returned a non-JSON body for {self.who}"
            ) from exc
        token = self._parse_token(data, obtained_at)
        logger.info("obtained an access token for %s, expires in %ds", self.who, token.expires_at - obtained_at)
        return token

    def _post(self, **kwargs: Any) -> Any:
        # allow_redirects=False: a 3xx is answered by _check_response, never followed with the secret.
        return self._session.fetch_token(
            self.token_url,
            grant_type="client_credentials",
            timeout=self.timeout,
            allow_redirects=False,
            **self.params,
            **kwargs,
        )

    def _token_response(self) -> Any:
        if self.dpop is None:
            return self._post()
        for attempt in range(2):  # RFC 9449 8: one more try when the issuer asks for a nonce
            headers = {**DEFAULT_HEADERS, "DPoP": self.dpop_proof("POST", self.token_url)}
            try:
                return self._post(headers=headers)
            except _NonceRequired as exc:
                if attempt:
                    raise TokenRequestError(str(exc), status=exc.status, error=exc.error) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _parse_token(self, data: Mapping[str, Any], obtained_at: float) -> Token:
        access_token, expires_in = data.get("access_token"), _positive(data.get("expires_in"))
        types = ("bearer", "dpop") if self.dpop is not None else ("bearer",)  # what we can send
        problem = None
        if not isinstance(access_token, str) or not access_token:
            problem = "no access_token"
        elif expires_in is None:
            problem = "no positive expires_in"
        elif str(data.get("token_type", "Bearer")).lower() not in types:
            problem = f"token_type is not {' or '.join(types)}"
        if problem or not isinstance(access_token, str) or expires_in is None:
            raise MalformedTokenResponse(f"malformed token response from {self.token_url} for {self.who}: {problem}")
        token_type = "DPoP" if str(data.get("token_type", "")).lower() == "dpop" else "Bearer"
        if self.dpop is not None and token_type == "Bearer":  # noqa: S105 -- a scheme
            # RFC 9449 5: the issuer chose not to bind it; it can only be sent as a bearer token.
            logger.warning("the issuer returned a bearer token, not a DPoP-bound one, for %s", self.who)
        return Token(access_token, obtained_at + expires_in, obtained_at, token_type)

    def _check_response(self, resp: Any) -> Any:
        """authlib compliance hook: turn every non-2xx answer into our exception tree."""
        status, body = resp.status_code, _json_object(resp)
        fresh_nonce = self.remember_nonce(self.token_url, resp)
        if 200 <= status < 300 and "error" not in body:
            return resp  # authlib parses it; _parse_token checks what it holds
        where = f"HTTP {status} from {self.token_url} for {self.who}"
        if 300 <= status < 400:
            target = urlsplit(resp.headers.get("Location") or "").hostname or "no Location"
            raise TokenRequestError(
                f"the token endpoint redirected (HTTP {status} to host {self._scrub(target)!r}); not followed, "
                f"the client secret is never re-sent: set token_url to the final URL ({self.who})",
                status=status,
            )
        error = self._scrub(body["error"]) if isinstance(body.get("error"), str) else None
        if error == "use_dpop_nonce" and fresh_nonce:
            raise _NonceRequired(f"the issuer requires a DPoP nonce: {where}", status=status, error=error)
        if status == 429:
            retry_after = retry_after_seconds(resp.headers.get("Retry-After"), self.default_retry_after)
            raise RateLimited(
                f"rate limited: {where}; Retry-After {retry_after:g}s",
                status=status,
                error=error,
                retry_after=retry_after,
            )
        if status >= 500 or status == 408:
            raise IssuerUnavailable(f"issuer unavailable: {where}", status=status, error=error)
        detail = self._scrub(f"{error or 'error'}: {body.get('error_description') or ''}")
        cls = AccessDenied if status in (401, 403) or error in _DENIED_ERRORS else TokenRequestError
        raise cls(f"token request denied: {where}: {detail}", status=status, error=error)

    def _scrub(self, text: Any) -> str:
        # The issuer's words go into our messages; never let them echo the secret back.
        text = str(text)
        return (text.replace(self._client_secret, "***") if self._client_secret else text)[:300]


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_token_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        return
    raise ValueError(f"token_url must be https (the client secret travels in it), not {url!r}")


def _positive(value: Any) -> float | None:
    # Some issuers send expires_in as a string; a bool or a non-positive number is not a lifetime.
    try:
        number = float(value) if not isinstance(value, bool) else 0.0
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 1e9 else None


def _json_object(resp: Any) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def retry_after_seconds(value: str | None, default: float) -> float:
    """Seconds from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return default
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return default
