"""Issuer presets: what each provider puts where in a client_credentials access token.

A preset is a table of issuer-entry keys. An entry's own keys override its preset key by key, and
the preset overrides the top-level settings (``SCOPE_CLAIMS`` ...). Pure: no Django.

- ``auth0``: scopes from ``scope`` and ``permissions`` (RBAC); client id from ``client_id``, ``azp``,
  then ``sub`` minus ``@clients``.
- ``okta``: scopes from ``scp`` (an array); client id from ``cid``, ``client_id``, then ``sub``.
- ``entra``: scopes from ``roles`` (application permissions) and ``scp``; client id from ``azp``
  (v2 tokens), ``appid`` (v1 tokens), then ``sub``; the v1 issuer ``https://sts.windows.net/<tenant>/``
  and the v2 issuer ``https://login.microsoftonline.com/<tenant>/v2.0`` are both accepted.
- ``keycloak``: scopes from ``scope``; client id from ``client_id``, ``azp``, then ``sub``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["PRESETS", "preset_aliases"]

PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        # Auth0: RBAC "permissions" beside "scope"; the client is azp, sub is "<client_id>@clients".
        "auth0": MappingProxyType({"scope_claims": ("scope", "permissions"), "client_id_claims": ("client_id", "azp")}),
        # Okta custom authorization servers: scp is an array; cid names the client.
        "okta": MappingProxyType({"scope_claims": ("scp",), "client_id_claims": ("cid", "client_id")}),
        # Entra ID (v1 and v2 access tokens): application permissions arrive as "roles"; delegated
        # ones as "scp". v2 tokens name the client in azp, v1 tokens in appid.
        "entra": MappingProxyType({"scope_claims": ("roles", "scp"), "client_id_claims": ("azp", "appid")}),
        # Keycloak: scope string; client_id (recent versions) or azp.
        "keycloak": MappingProxyType({"scope_claims": ("scope",), "client_id_claims": ("client_id", "azp")}),
    }
)

_ENTRA_V2 = re.compile(r"https://login\.microsoftonline\.com/([0-9a-fA-F-]{36})/v2\.0")
_ENTRA_V1 = re.compile(r"https://sts\.windows\.net/([0-9a-fA-F-]{36})/")


def preset_aliases(preset: str | None, issuer: str) -> tuple[str, ...]:
    """Other exact ``iss`` values a preset knows for ``issuer`` (Entra's v1 form beside v2)."""
    if preset != "entra":
        return ()
    match = _ENTRA_V2.fullmatch(issuer)
    if match:
        return (f"https://sts.windows.net/{match.group(1)}/",)
    match = _ENTRA_V1.fullmatch(issuer)
    if match:
        return (f"https://login.microsoftonline.com/{match.group(1)}/v2.0",)
    return ()
