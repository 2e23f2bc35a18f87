"""The configured issuers, as the models, the admin, the commands and the migrations need them.

A client is (issuer, client_id): a client row, a grant, a tombstone or a revoked jti belongs to
one trusted issuer. These helpers answer "which issuers are trusted?" and "is there exactly one?"
(then it may be filled in when none is given; with several, nothing is ever guessed).
Imports Django settings when called, never at import time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["issuer_policies", "trusted_issuers", "only_issuer", "require_issuer", "resolve_issuer"]


def issuer_policies() -> list[Any]:
    """The trusted issuers' policies (``issuers.IssuerPolicy``), or [] while the settings are invalid.

    Read through ``conf.issuer_policies()`` when it exists, else built from DRF_M2M_AUTH here.
    """
    from django.core.exceptions import ImproperlyConfigured

    from . import conf

    getter = getattr(conf, "issuer_policies", None)
    if getter is not None:
        try:
            policies = getter()
        except ImproperlyConfigured:
            return []
        return list(policies.values() if isinstance(policies, Mapping) else policies)
    from django.conf import settings

    from .issuers import build_policies
    from .validation import ALLOWED_ALGORITHMS

    user = getattr(settings, "DRF_M2M_AUTH", None)
    if not isinstance(user, Mapping):
        return []
    policies, problems = build_policies(user, allowed_algorithms=ALLOWED_ALGORITHMS)
    return [] if any(not p.warning for p in problems) else list(policies)


def trusted_issuers() -> list[str]:
    """Every configured issuer (each entry's own ``issuer``; aliases left out), in settings order."""
    return [policy.issuer for policy in issuer_policies()]


def only_issuer() -> str | None:
    """The issuer when exactly one is configured (and the settings are valid), else None."""
    issuers = trusted_issuers()
    return issuers[0] if len(issuers) == 1 else None


def require_issuer(issuer: str | None) -> str:
    """``issuer`` if given, else the only configured one; ValueError (nothing guessed) otherwise."""
    if issuer:
        return issuer
    only = only_issuer()
    if only is None:
        configured = trusted_issuers()
        if configured:
            raise ValueError(
                f"{len(configured)} issuers are configured ({', '.join(configured)}): "
                "say which one the client belongs to."
            )
        raise ValueError("No valid issuer is configured in DRF_M2M_AUTH: say which issuer the client belongs to.")
    return only


def resolve_issuer(given: str | None) -> str:
    """The issuer an operator means (a command's ``--issuer``): ``given`` must be a configured
    issuer (an alias names its entry's issuer); without it, the only configured one. ValueError
    otherwise, saying which issuers there are: nothing is guessed."""
    if not given:
        return require_issuer(None)
    policies = issuer_policies()
    for policy in policies:
        if given in policy.issuers:
            return policy.issuer
    known = ", ".join(p.issuer for p in policies) or "none valid"
    raise ValueError(f"issuer {given!r} is not configured in DRF_M2M_AUTH (configured: {known}).")
