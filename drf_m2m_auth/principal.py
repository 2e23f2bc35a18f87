"""The authenticated principal: ServiceClient (request.user) and AccessToken (request.auth)."""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["AccessToken", "ServiceClient", "client_id_from_claims", "issuer_tag"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})
AUTH0_CLIENT_SUFFIX = "@clients"


@functools.lru_cache(maxsize=256)
def issuer_tag(issuer: str) -> str:
    """12 hex characters naming an issuer in a key (sha256 of it): ServiceClient.pk's issuer part."""
    return hashlib.sha256(issuer.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def client_id_from_claims(claims: Mapping[str, Any]) -> str:
    """The OAuth client id: RFC 9068 ``client_id``, else Auth0's ``azp``, else ``sub``.

    Auth0 writes client_credentials subjects as ``<client_id>@clients``; the suffix is dropped so
    the id matches what the issuer's dashboard shows. Non-string values are ignored.
    """
    for name in ("client_id", "azp"):
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    sub = claims.get("sub")
    if isinstance(sub, str) and sub.endswith(AUTH0_CLIENT_SUFFIX) and len(sub) > len(AUTH0_CLIENT_SUFFIX):
        return sub[: -len(AUTH0_CLIENT_SUFFIX)]
    return sub if isinstance(sub, str) else ""


class AccessToken:
    """A verified access token (``request.auth``). Never holds or shows the raw JWT."""

    __slots__ = (
        "claims",
        "scopes",
        "client_id",
        "subject",
        "issuer",
        "exp",
        "iat",
        "jti",
        "kid",
        "digest",
        "header",
        "cnf",
        "jkt",
        "x5t_s256",
    )

    def __init__(
        self,
        claims: dict[str, Any],
        scopes: frozenset[str],
        *,
        header: Mapping[str, Any] | None = None,
        token_hash: str = "",
        digest: bytes = b"",
        kid: str | None = None,
        issuer: str | None = None,
        client_id: str | None = None,
    ):
        self.claims = claims
        self.scopes = scopes
        # The verifier does not keep the JOSE header (kid is kept below): a cached token costs memory.
        self.header: Mapping[str, Any] = header if header is not None else _EMPTY
        # The verifier passes the trusted entry's issuer (an alias's token names its entry) and the
        # client id under that issuer's rule; built by hand, both come from the claims.
        self.client_id = client_id_from_claims(claims) if client_id is None else client_id
        self.subject: str = claims["sub"]
        self.issuer: str = claims["iss"] if issuer is None else issuer
        self.exp: float = claims["exp"]
        self.iat: float = claims["iat"]
        jti = claims.get("jti")
        self.jti: str | None = jti if isinstance(jti, str) and jti else None
        self.kid = kid
        # sha256 of the raw token: a cache key, not a secret; hex only when someone asks
        self.digest = digest or bytes.fromhex(token_hash)
        # RFC 7800 confirmation, decided once here so an unbound token costs one "is None" per
        # request: cnf.jkt binds it to a DPoP key (RFC 9449 6.1), cnf["x5t#S256"] to a client
        # certificate (RFC 8705 3.1).
        cnf = claims.get("cnf")
        self.cnf: dict[str, Any] | None = cnf if isinstance(cnf, dict) else None
        self.jkt: str | None = self.cnf.get("jkt") if self.cnf is not None else None
        self.x5t_s256: str | None = self.cnf.get("x5t#S256") if self.cnf is not None else None

    @property
    def token_hash(self) -> str:
        return self.digest.hex()

    @property
    def expires_at(self) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(self.exp, tz=_dt.timezone.utc)

    @property
    def issued_at(self) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(self.iat, tz=_dt.timezone.utc)

    def has_scopes(self, needed) -> bool:
        return frozenset(needed) <= self.scopes

    def __getitem__(self, name: str) -> Any:
        return self.claims[name]

    def __repr__(self) -> str:
        return (
            f"<AccessToken client_id={self.client_id!r} iss={self.issuer!r} "
            f"scopes={sorted(self.scopes)!r} exp={int(self.exp)}>"
        )


class ServiceClient:
    """The calling service (``request.user``): not a Django User.

    A client is (``issuer``, ``client_id``): equality and hashing use both, and so does ``pk``, so
    DRF's UserRateThrottle gives two issuers' clients that share an id two separate buckets.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(
        self,
        client_id: str,
        *,
        subject: str,
        scopes: frozenset[str],
        claims: Mapping[str, Any],
        issuer: str | None = None,
    ):
        self.client_id = client_id
        self.subject = subject
        self.scopes = scopes
        self.claims = claims
        iss = claims.get("iss") if issuer is None else issuer
        self.issuer: str = iss if isinstance(iss, str) else ""

    @classmethod
    def from_token(cls, token: AccessToken) -> ServiceClient:
        return cls(
            token.client_id, subject=token.subject, scopes=token.scopes, claims=token.claims, issuer=token.issuer
        )

    @property
    def pk(self) -> str:
        """``"<client_id>@<12 hex of sha256(issuer)>"``: the issuer part is cache-key safe and bounded
        (an issuer URL may be long); the client id alone when no issuer is known (a hand-made principal).
        Computed when asked (DRF's throttles), not on the token-verification path."""
        return f"{self.client_id}@{issuer_tag(self.issuer)}" if self.issuer else self.client_id

    id = pk

    @property
    def username(self) -> str:
        return self.client_id

    def get_username(self) -> str:
        return self.client_id

    def has_perm(self, perm, obj=None) -> bool:  # Django-style permission API: scopes, not perms
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ServiceClient) and other.client_id == self.client_id and other.issuer == self.issuer

    def __hash__(self) -> int:
        return hash(("ServiceClient", self.issuer, self.client_id))

    def __str__(self) -> str:
        return self.client_id

    def __repr__(self) -> str:
        return f"<ServiceClient {self.client_id!r} iss={self.issuer!r} scopes={sorted(self.scopes)!r}>"
