"""IssuerTrust: one trusted issuer as the verifier applies it (its JWKSource and its claim rules). Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .issuers import IssuerPolicy
from .jose import SIGNATURE_VERIFIERS
from .jwks import JWKSource
from .principal import client_id_from_claims
from .scopes import DEFAULT_SCOPE_CLAIMS

__all__ = ["ACCEPTED_TYPES", "ACCESS_TOKEN_TYPES", "IssuerTrust"]

# RFC 9068 2.1 / RFC 8725 3.11: explicit typing. Media types compare case-insensitively and may
# omit the "application/" prefix (RFC 7515 4.1.9).
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
ACCEPTED_TYPES = ACCESS_TOKEN_TYPES | {"jwt", "application/jwt"}


def _sub_client_id(claims: dict[str, Any]) -> Any:
    return client_id_from_claims(claims)


class IssuerTrust:
    """One trusted issuer as the verifier applies it: its JWKSource and its own claim rules.

    Aliases (Entra's v1 issuer beside v2) are extra ``iss`` values of the same trust: they share its
    JWKSource. ``issuer`` is the entry's issuer, what AccessToken.issuer and ServiceClient.issuer say.
    """

    __slots__ = (
        "issuer",
        "issuers",
        "source",
        "audiences",
        "algorithms",
        "leeway",
        "scope_claims",
        "accepted_types",
        "client_id",
        "policy",
    )

    def __init__(
        self,
        issuer: str,
        source: JWKSource,
        *,
        audiences: Iterable[str],
        aliases: Iterable[str] = (),
        algorithms: Iterable[str] = ("RS256",),
        leeway: float = 0,
        scope_claims: Iterable[str] = DEFAULT_SCOPE_CLAIMS,
        require_at_jwt: bool = False,
        client_id: Callable[[dict[str, Any]], Any] = _sub_client_id,
        policy: IssuerPolicy | None = None,
    ):
        self.issuer = issuer
        self.issuers = (issuer, *aliases)
        self.source = source
        self.audiences = frozenset(audiences)
        self.algorithms = frozenset(a for a in algorithms if a in SIGNATURE_VERIFIERS)
        self.leeway = float(leeway)
        self.scope_claims = tuple(scope_claims)
        self.accepted_types = ACCESS_TOKEN_TYPES if require_at_jwt else ACCEPTED_TYPES
        self.client_id = client_id
        self.policy = policy

    @classmethod
    def from_policy(cls, policy: IssuerPolicy, source: JWKSource) -> IssuerTrust:
        return cls(
            policy.issuer,
            source,
            audiences=policy.audiences,
            aliases=policy.aliases,
            algorithms=policy.algorithms,
            leeway=policy.leeway,
            scope_claims=policy.scope_claims,
            require_at_jwt=policy.require_at_jwt_typ,
            client_id=policy.client_id,
            policy=policy,
        )

    def __repr__(self) -> str:
        return f"<IssuerTrust {self.issuer!r} audiences={sorted(self.audiences)!r}>"
