"""HasScopes and HasResourceGrant: what a client may do, and where."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import BasePermission, BasePermissionMetaclass, OperandHolder, SingleOperandHolder

from . import revocation
from .conf import realm
from .exceptions import InsufficientScopeDenied, M2MPermissionDenied
from .principal import AccessToken
from .scopes import resolve_required

__all__ = ["M2MPermission", "HasScopes", "HasResourceGrant"]


# Our permissions deny by raising (so the 403 can carry RFC 6750's WWW-Authenticate). DRF's own
# OR/NOT would let that exception escape before the other operand is asked, so composition that
# starts from one of our classes uses operators that treat our denial as "False" until the end.
class _OR:
    def __init__(self, op1: Any, op2: Any):
        self.op1, self.op2 = op1, op2

    def _first_true(self, checks: list) -> bool:
        denial = None
        for check in checks:
            try:
                if check():
                    return True
            except M2MPermissionDenied as exc:
                denial = denial or exc
        if denial is not None:
            raise denial
        return False

    def has_permission(self, request: Any, view: Any) -> bool:
        return self._first_true(
            [lambda: self.op1.has_permission(request, view), lambda: self.op2.has_permission(request, view)]
        )

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        return self._first_true(
            [
                lambda: self.op1.has_permission(request, view) and self.op1.has_object_permission(request, view, obj),
                lambda: self.op2.has_permission(request, view) and self.op2.has_object_permission(request, view, obj),
            ]
        )


class _NOT:
    def __init__(self, op1: Any):
        self.op1 = op1

    def has_permission(self, request: Any, view: Any) -> bool:
        try:
            return not self.op1.has_permission(request, view)
        except M2MPermissionDenied:
            return True

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        try:
            return not self.op1.has_object_permission(request, view, obj)
        except M2MPermissionDenied:
            return True


class _Composable:
    # The stubs type OperandHolder's operands as DRF classes only; ours are duck-typed the same way.
    def __and__(self, other: Any) -> Any:  # DRF's AND is already right: a denial from either side denies
        from rest_framework.permissions import AND

        return _holder(AND, self, other)

    def __or__(self, other: Any) -> Any:
        return _holder(_OR, self, other)

    def __rand__(self, other: Any) -> Any:
        from rest_framework.permissions import AND

        return _holder(AND, other, self)

    def __ror__(self, other: Any) -> Any:
        return _holder(_OR, other, self)

    def __invert__(self) -> Any:
        return _single_holder(_NOT, self)


class _Holder(_Composable, OperandHolder):
    pass


class _SingleHolder(_Composable, SingleOperandHolder):
    pass


_holder: Any = _Holder
_single_holder: Any = _SingleHolder


class _Metaclass(_Composable, BasePermissionMetaclass):
    pass


class M2MPermission(BasePermission, metaclass=_Metaclass):
    """Base for drf_m2m_auth permissions: composable with DRF's ``&``, ``|`` and ``~``."""

    def get_token(self, request: Any) -> Any:
        token = request.auth
        if type(token) is AccessToken:  # the common case, without two hasattr calls
            return token
        return token if hasattr(token, "scopes") and hasattr(token, "client_id") else None


class HasScopes(M2MPermission):
    """Require the scopes in ``view.required_scopes``.

    ``required_scopes`` is a list (all needed, for every request) or a dict keyed by viewset
    action (``"list"``) or upper-case HTTP method (``"GET"``); the action wins when both match.
    A request with no matching entry is denied. Scopes match exactly (``read:database`` is not
    ``read:data``); they are read from ``request.auth.scopes`` so ``force_authenticate`` works.
    """

    def get_required_scopes(self, request: Any, view: Any) -> frozenset[str] | None:
        spec = getattr(view, "required_scopes", None)
        if spec is None:
            raise ImproperlyConfigured(f"{type(view).__name__} uses HasScopes but defines no required_scopes")
        try:
            # request._request.method: DRF's Request proxies unknown attributes through __getattr__
            method = getattr(request, "_request", request).method
            return resolve_required(spec, action=getattr(view, "action", None), method=method)
        except TypeError as exc:
            raise ImproperlyConfigured(f"{type(view).__name__}.required_scopes: {exc}") from exc

    def has_permission(self, request: Any, view: Any) -> bool:
        token = self.get_token(request)
        if token is None:
            return False  # DRF answers 401 (no credentials) or 403
        if type(self).get_required_scopes is HasScopes.get_required_scopes:
            spec = getattr(view, "required_scopes", None)
            if type(spec) is list or type(spec) is tuple:  # the per-request fast path: no frozenset built
                if token.scopes.issuperset(spec):
                    return True
                raise InsufficientScopeDenied(frozenset(spec), realm=realm())
        needed = self.get_required_scopes(request, view)
        if needed is None:
            raise M2MPermissionDenied(
                "No scopes are configured for this action; access is denied.", code="no_scopes_configured"
            )
        if needed <= token.scopes:
            return True
        raise InsufficientScopeDenied(needed, realm=realm())


class HasResourceGrant(M2MPermission):
    """Require a ResourceGrant row for (client, ``view.resource_name``), the client being the token's
    (issuer, client_id); unregistered clients are denied."""

    def get_resource_name(self, request: Any, view: Any) -> str:
        name = getattr(view, "resource_name", None)
        if not isinstance(name, str) or not name:
            raise ImproperlyConfigured(f"{type(view).__name__} uses HasResourceGrant but defines no resource_name")
        return name

    def has_permission(self, request: Any, view: Any) -> bool:
        # Resolve the name first: a view without one is an error on its first request, even an
        # anonymous one, not something found when the first real client calls.
        resource = self.get_resource_name(request, view)
        token = self.get_token(request)
        if token is None:
            return False
        # A client is (issuer, client_id): the same id at another trusted issuer has no grant here.
        # A token object without an issuer (force_authenticate with a stand-in) has no grant at all.
        granted = revocation.resources_for(getattr(token, "issuer", None), token.client_id)
        if granted is None:
            raise M2MPermissionDenied("This client is not registered.", code="client_unregistered")
        if resource not in granted:
            raise M2MPermissionDenied("This client has no grant for this resource.", code="no_grant")
        return True
