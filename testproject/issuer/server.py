"""The token endpoint: authlib's Django AuthorizationServer with an Auth0-shaped client_credentials grant.

authlib authenticates the client (client_secret_basic / client_secret_post), parses the request and
renders OAuth 2.0 errors; this module adds what Auth0 adds: a required ``audience``, per-client
grants per API, and RFC 9068 JWT access tokens.
"""

from __future__ import annotations

import functools
import secrets
import time

from authlib.integrations.django_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import errors
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from joserfc import jwt

from . import keys, statuslists
from .conf import issuer_url
from .models import Api, ClientGrant, OAuthClient

AUTH0_CLIENT_SUFFIX = "@clients"


class AccessDenied(errors.AccessDeniedError):
    """Auth0 answers 403 access_denied for an unknown API, a missing grant or ungranted scopes."""

    status_code = 403


class UnauthorizedClient(errors.UnauthorizedClientError):
    status_code = 403


def mint_access_token(
    client: OAuthClient,
    api: Api,
    scopes: list[str],
    *,
    now: int | None = None,
    lifetime: int | None = None,
    jkt: str | None = None,
) -> tuple[str, dict, dict]:
    """Sign an RFC 9068 access token; return (jwt, header, claims).

    Claims are those Auth0 puts in a client_credentials token (``sub`` = ``<client_id>@clients``,
    ``azp``, ``gty``) plus RFC 9068's ``client_id`` and ``jti``.
    """
    now = int(time.time()) if now is None else now
    lifetime = api.token_lifetime if lifetime is None else lifetime
    kid, key = keys.signing_key()
    header = {"alg": keys.ALG, "typ": "at+jwt", "kid": kid}
    claims = {
        "iss": issuer_url(),
        "sub": client.client_id + AUTH0_CLIENT_SUFFIX,
        "aud": api.identifier,
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_hex(16),  # hex: never starts with "-", so an operator can pass it to a command
        "client_id": client.client_id,
        "azp": client.client_id,
        "scope": " ".join(sorted(scopes)),
        "gty": "client-credentials",
    }
    if jkt is not None:
        claims["cnf"] = {"jkt": jkt}  # RFC 9449 6.1: bound to the key of the token request's DPoP proof
    if statuslists.enabled():
        # draft-ietf-oauth-status-list-20 6.2: where resource servers read this token's status.
        claims["status"] = statuslists.allocate(claims["jti"], client, api.identifier, claims["iat"], claims["exp"])
    return jwt.encode(header, claims, key, algorithms=[keys.ALG]), header, claims


class InvalidDPoPProof(errors.OAuth2Error):
    error = "invalid_dpop_proof"  # RFC 9449 5: a 400 from the token endpoint


def dpop_thumbprint(request) -> str | None:
    """RFC 9449 5: with a DPoP header, its proof must pass 4.3; the token is then bound to its key."""
    proof = request.headers.get("DPoP")
    if proof is None:
        return None
    from drf_m2m_auth.dpop import DPoPVerifier
    from drf_m2m_auth.errors import InvalidToken
    from drf_m2m_auth.shared import shared_cache_for

    try:
        return DPoPVerifier(replay_cache=shared_cache_for("default")).verify(proof, method="POST", url=request.uri).jkt
    except InvalidToken as exc:
        raise InvalidDPoPProof(exc.description) from exc


class Auth0ClientCredentialsGrant(ClientCredentialsGrant):
    """client_credentials with an ``audience`` and client grants, answering as Auth0 does."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_token_request(self):
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClient(f"Grant type '{self.GRANT_TYPE}' not allowed for the client.")
        self.request.client = client
        audience = self.request.payload.data.get("audience")
        if not audience:
            # Auth0 falls back to the tenant's default audience; this issuer has none.
            raise AccessDenied("No audience parameter was provided, and no default audience has been configured")
        api = Api.objects.filter(identifier=audience).first()
        if api is None:
            raise AccessDenied(f"Service not found: {audience}")
        grant = ClientGrant.objects.filter(client=client, api=api).first()
        if grant is None:
            # Auth0's wording, with its double quotes made single: RFC 6749 5.2 forbids '"' here.
            raise AccessDenied(
                f"Client is not authorized to access '{audience}'. "
                "You need to create a 'client-grant' associated to this API."
            )
        granted = grant.scope_list
        requested = (self.request.payload.scope or "").split()
        missing = sorted(set(requested) - set(granted))
        if missing:
            raise AccessDenied(f"Client has not been granted scopes: {', '.join(missing)}")
        self.api = api
        self.jkt = dpop_thumbprint(self.request)
        # No scope asked for: Auth0 grants every scope of the client grant.
        self.scopes = sorted(set(requested)) if requested else granted

    def create_token_response(self):
        token, _, claims = mint_access_token(self.request.client, self.api, self.scopes, jkt=self.jkt)
        body = {
            "access_token": token,
            "token_type": "DPoP" if self.jkt else "Bearer",
            "expires_in": claims["exp"] - claims["iat"],
            "scope": claims["scope"],
        }
        return 200, body, self.TOKEN_RESPONSE_HEADER


class LocalAuthorizationServer(AuthorizationServer):
    """authlib's Django server with no token table: JWT access tokens are not stored."""

    def __init__(self):
        super().__init__(OAuthClient, None)
        self.register_grant(Auth0ClientCredentialsGrant)

    def query_client(self, client_id):
        return OAuthClient.objects.filter(client_id=client_id, is_active=True).first()

    def save_token(self, token, request):
        return None

    def authenticate_client(self, request, methods, endpoint="token"):
        try:
            return super().authenticate_client(request, methods, endpoint)
        except errors.InvalidClientError as exc:
            # One answer for unknown client, inactive client and wrong secret: no oracle.
            raise errors.InvalidClientError(status_code=401, description="Client authentication failed.") from exc


@functools.cache
def get_server() -> LocalAuthorizationServer:
    return LocalAuthorizationServer()
