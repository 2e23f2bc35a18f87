"""Scopes: claims -> frozenset of scope strings, and required-scope resolution for a request."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["DEFAULT_SCOPE_CLAIMS", "scopes_from_claims", "resolve_required"]

DEFAULT_SCOPE_CLAIMS = ("scope", "scp", "permissions")


def scopes_from_claims(claims: Mapping[str, Any], scope_claims: Iterable[str] = DEFAULT_SCOPE_CLAIMS) -> frozenset[str]:
    """Union of the scopes found in ``scope_claims``.

    Each claim is either a space-delimited string (RFC 8693 ``scope``, Entra's ``scp``) or an
    array of strings (Okta's ``scp``, Auth0's RBAC ``permissions``). Anything else in those
    claims (numbers, objects, arrays holding non-strings) contributes nothing: a scope is only
    ever granted by a value the issuer plainly wrote as a string.
    """
    found: set[str] = set()
    for name in scope_claims:
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, str) and item and " " not in item:
                    found.add(item)
    return frozenset(found)


def resolve_required(spec: Any, *, action: str | None, method: str) -> frozenset[str] | None:
    """Scopes needed for this request, from a view's ``required_scopes``.

    ``spec`` is a list/tuple/set (all needed, for every request) or a dict keyed by viewset
    action (``"list"``) or upper-case HTTP method (``"GET"``); the action wins when both match.
    Returns None when the dict has no entry for this request: the caller must deny.
    """
    if isinstance(spec, str):
        raise TypeError("required_scopes must be a list of scopes or a dict, not a string")
    if isinstance(spec, Mapping):
        if action is not None and action in spec:
            value = spec[action]
        elif method.upper() in spec:
            value = spec[method.upper()]
        else:
            return None
        if isinstance(value, str):
            raise TypeError("each required_scopes entry must be a list of scopes, not a string")
        return frozenset(value)
    if isinstance(spec, (list, tuple, set, frozenset)):
        return frozenset(spec)
    raise TypeError(f"required_scopes must be a list or dict, not {type(spec).__name__}")
