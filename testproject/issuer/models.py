"""The local issuer's records: APIs (audiences), OAuth clients, client grants, signing keys.

Modelled on Auth0's dashboard: an *API* has an identifier (the ``aud``) and the scopes it defines;
a *machine-to-machine application* has a client id and secret; a *client grant* authorizes one
application for one API with some of its scopes.
"""

from __future__ import annotations

import hashlib
import secrets

from authlib.oauth2.rfc6749 import ClientMixin
from django.db import models

from .conf import DEFAULT_TOKEN_LIFETIME


def split_scopes(value: str) -> list[str]:
    return sorted(set(value.split()))


def new_client_id() -> str:
    # Auth0 client ids are 32 random alphanumerics; this keeps the shape.
    return secrets.token_urlsafe(24).replace("-", "x").replace("_", "y")[:32]


def hash_secret(secret: str) -> str:
    # Secrets are long random strings, so a plain digest is enough; what matters here is that the
    # database and the admin never show a usable secret.
    return hashlib.sha256(secret.encode()).hexdigest()


class Api(models.Model):
    """A resource server (Auth0: Applications > APIs). ``identifier`` is the token's ``aud``."""

    identifier = models.CharField(max_length=255, unique=True, help_text="The audience, e.g. https://service-b.example")
    name = models.CharField(max_length=100)
    scopes = models.TextField(blank=True, help_text="Space-separated scopes this API defines.")
    token_lifetime = models.PositiveIntegerField(
        default=DEFAULT_TOKEN_LIFETIME, help_text="Access-token lifetime in seconds."
    )

    class Meta:
        verbose_name = "API"
        verbose_name_plural = "APIs"
        ordering = ["identifier"]

    def __str__(self) -> str:
        return f"{self.name} ({self.identifier})"

    @property
    def scope_list(self) -> list[str]:
        return split_scopes(self.scopes)


class OAuthClient(ClientMixin, models.Model):
    """A machine-to-machine application: authenticates with client_id and secret at oauth/token."""

    client_id = models.CharField(max_length=64, unique=True, default=new_client_id)
    name = models.CharField(max_length=100)
    secret_hash = models.CharField(
        max_length=64, editable=False, help_text="SHA-256 of the secret; the secret is shown once."
    )
    grant_types = models.CharField(
        max_length=100, default="client_credentials", help_text="Space-separated grant types the client may use."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "OAuth client"
        ordering = ["client_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"

    def set_secret(self, secret: str | None = None) -> str:
        """Store a (new) secret's digest; return the secret, which is never stored."""
        secret = secret or secrets.token_urlsafe(32)
        self.secret_hash = hash_secret(secret)
        return secret

    # authlib's ClientMixin: what the token endpoint asks of a client.

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        return scope

    def check_redirect_uri(self, redirect_uri) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return bool(self.secret_hash) and secrets.compare_digest(self.secret_hash, hash_secret(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types.split()


class ClientGrant(models.Model):
    """Authorizes one client for one API with some of the API's scopes (Auth0's client grant)."""

    client = models.ForeignKey(OAuthClient, on_delete=models.CASCADE, related_name="grants")
    api = models.ForeignKey(Api, on_delete=models.CASCADE, related_name="grants")
    scopes = models.TextField(blank=True, help_text="Space-separated scopes granted to the client.")

    class Meta:
        verbose_name = "client grant"
        constraints = [models.UniqueConstraint(fields=["client", "api"], name="issuer_one_grant_per_api")]

    def __str__(self) -> str:
        return f"{self.client.name} -> {self.api.identifier} [{self.scopes}]"

    @property
    def scope_list(self) -> list[str]:
        return split_scopes(self.scopes)


class SigningKey(models.Model):
    """An RSA signing key. ``next`` is published before it signs; ``retired`` stays published a while."""

    NEXT, CURRENT, RETIRED, REVOKED = "next", "current", "retired", "revoked"
    STATES = [
        (NEXT, "next (published, not signing yet)"),
        (CURRENT, "current (signing)"),
        (RETIRED, "retired (published until its tokens expire)"),
        (REVOKED, "revoked (not published)"),
    ]

    kid = models.CharField(max_length=64, unique=True)
    state = models.CharField(max_length=10, choices=STATES, db_index=True)
    private_jwk = models.TextField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "signing key"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kid} ({self.state})"


class IssuedToken(models.Model):
    """One minted access token's place in the issuer's Token Status List (draft-ietf-oauth-status-list-20).

    Every token gets the next free (``list_number``, ``idx``) slot; its ``status`` is what the list
    at ``statuslists/<list_number>`` says at ``idx``: 0 VALID, 1 INVALID (revoked), 2 SUSPENDED.
    """

    VALID, INVALID, SUSPENDED = 0, 1, 2
    STATUSES = [(VALID, "valid"), (INVALID, "revoked (invalid)"), (SUSPENDED, "suspended")]

    jti = models.CharField(max_length=64, unique=True)
    client = models.ForeignKey(OAuthClient, on_delete=models.CASCADE, related_name="issued_tokens")
    audience = models.CharField(max_length=255)
    list_number = models.PositiveIntegerField(default=0)
    idx = models.PositiveIntegerField(default=0)
    status = models.PositiveSmallIntegerField(choices=STATUSES, default=VALID)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        verbose_name = "issued token"
        ordering = ["-id"]
        indexes = [models.Index(fields=["list_number", "idx"], name="issuer_token_status_slot")]

    def __str__(self) -> str:
        return f"{self.jti} (list {self.list_number}, idx {self.idx}: {self.get_status_display()})"
