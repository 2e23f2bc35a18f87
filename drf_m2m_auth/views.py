"""The status view: what this process has loaded, for readiness probes and ``m2m_drill``.

``GET`` answers JSON::

    {"revocation": {"version": V, "loaded_at": <unix time>, "age_s": <seconds>},
     "issuers": {"<iss>": {"keys": <n>, "age_s": <seconds or null>}}}

``version`` is the fleet's change sequence this process has loaded (``RevocationState.sequence``,
changes.py): every committed change to clients, grants, tombstones or the jti deny-list has a
number, and a process at version V has applied every change numbered up to V. ``loaded_at``/``age_s``: when
this process last read the database. Per issuer: how many signing keys it holds and how old they
are (nothing is fetched for the view). No secret, no token, no client id.

Who may read it: ``DRF_M2M_AUTH["STATUS_VIEW_ACCESS"]``, read at each request: ``"loopback"``
(``REMOTE_ADDR`` in 127.0.0.0/8 or ::1; ``X-Forwarded-For`` is never believed), ``"public"``, or
``"scope:<scope>"`` (an M2M access token with that scope, through ``M2MJWTAuthentication``).
While the revocation state cannot be loaded at all the view answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from . import revocation
from .authentication import M2MJWTAuthentication
from .conf import m2m_settings
from .errors import M2MAuthError
from .exceptions import to_api_exception
from .permissions import HasScopes
from .verifier import get_verifier

__all__ = ["StatusView", "status_payload", "is_loopback"]


def is_loopback(remote_addr: Any) -> bool:
    """REMOTE_ADDR (the TCP peer, as the WSGI/ASGI server set it) in 127.0.0.0/8 or ::1."""
    if type(remote_addr) is not str:
        return False
    try:
        address = ipaddress.ip_address(remote_addr.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return (mapped or address).is_loopback


def _issuers() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for issuer, source in get_verifier().sources.items():
        keys = source.keys.all if source.keys is not None else []
        fetched = source.fetched_at
        out[issuer] = {
            "keys": len(keys),
            "age_s": round(max(0.0, source.clock() - fetched), 3) if keys and fetched else None,
        }
    return out


def status_payload() -> dict[str, Any]:
    """The view's JSON body (raises ``RevocationUnavailable`` while nothing could be loaded)."""
    return {"revocation": revocation.status(), "issuers": _issuers()}


def _access() -> str:
    return m2m_settings.STATUS_VIEW_ACCESS


class _Loopback(BasePermission):
    def has_permission(self, request: Any, view: Any) -> bool:
        if is_loopback(request.META.get("REMOTE_ADDR")):
            return True
        raise PermissionDenied("The status view answers loopback requests only.")


class _Public(BasePermission):
    def has_permission(self, request: Any, view: Any) -> bool:
        return True


class StatusView(APIView):
    """GET: this process's revocation version and key ages (see the module docstring)."""

    http_method_names = ["get", "head", "options"]
    renderer_classes = [JSONRenderer]  # probes and m2m_drill read JSON whatever the project's defaults
    throttle_classes: list = []  # m2m_drill polls it every few milliseconds

    @property
    def required_scopes(self) -> list[str]:  # read by HasScopes in "scope:" mode
        return [_access()[len("scope:") :]]

    def get_authenticators(self) -> list:
        return [M2MJWTAuthentication()] if _access().startswith("scope:") else []

    def get_permissions(self) -> list:
        access = _access()
        if access == "public":
            return [_Public()]
        if access.startswith("scope:"):
            return [HasScopes()]
        return [_Loopback()]  # "loopback", the default

    def get(self, request: Any) -> Response:
        try:
            body = status_payload()
        except M2MAuthError as exc:  # RevocationUnavailable: 503 + Retry-After
            raise to_api_exception(exc, m2m_settings.REALM) from None
        return Response(body, headers={"Cache-Control": "no-store"})
