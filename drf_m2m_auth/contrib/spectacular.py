"""drf-spectacular: M2MJWTAuthentication as an OAuth 2.0 clientCredentials scheme, with scopes per operation.

Imported by ``DrfM2MAuthConfig.ready()`` when drf-spectacular is installed (defining the class is
what registers it). The security scheme ``m2mOAuth2`` lists the union of the scopes every operation
needs; each operation's security requirement lists the scopes of its own action and method, read
through ``HasScopes.get_required_scopes`` so the schema says what the permission enforces.

An operation that no token can reach (``HasScopes`` has no entry for its action nor its method, so
every request is answered 403) is not shown as open to any token: its only response is a 403 whose
description says so, and generation warns (``--fail-on-warn`` fails on it, as on any forgotten
action).

``tokenUrl`` is ``SPECTACULAR_SETTINGS["OAUTH2_TOKEN_URL"]`` when set, else the ``token_endpoint``
of the first ISSUER's OIDC discovery document. ``SPECTACULAR_SETTINGS["OAUTH2_SCOPES"]`` (a dict)
gives the scopes their descriptions.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.drainage import warn
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.utils import OpenApiResponse

from ..conf import as_list, m2m_settings, on_reset

__all__ = [
    "M2MJWTAuthenticationScheme",
    "SCHEME_NAME",
    "FAILED_DISCOVERY_RETRY",
    "discovered_token_url",
    "token_url",
    "required_scopes",
    "operation_scopes",
]

SCHEME_NAME = "m2mOAuth2"
FAILED_DISCOVERY_RETRY = 60.0  # seconds before a failed discovery is tried again

_token_urls: dict[str, tuple[str | None, float]] = {}  # issuer -> (token_endpoint or None, when learnt)
_lock = threading.Lock()


@on_reset
def _forget_token_urls() -> None:
    _token_urls.clear()


def discovered_token_url(issuer: str) -> str | None:
    """The issuer's token_endpoint from its discovery document (same https/size/timeout rules as the JWKS)."""
    from ..fetch import HTTPFetcher

    with _lock:
        known = _token_urls.get(issuer)
        if known is not None and (known[0] is not None or time.monotonic() - known[1] < FAILED_DISCOVERY_RETRY):
            return known[0]
        fetch = HTTPFetcher(
            timeout=float(m2m_settings.HTTP_TIMEOUT),
            max_bytes=int(m2m_settings.JWKS_MAX_BYTES),
            insecure_hosts=as_list(m2m_settings.INSECURE_JWKS_HOSTS),
        )
        url = None
        try:
            doc, _ = fetch(issuer.rstrip("/") + "/.well-known/openid-configuration")
            if isinstance(doc, dict) and doc.get("issuer") == issuer and isinstance(doc.get("token_endpoint"), str):
                url = doc["token_endpoint"]
        except Exception:  # JWKSError, or anything else: the schema must still be generated
            url = None
        _token_urls[issuer] = (url, time.monotonic())
        return url


def token_url() -> str:
    configured = spectacular_settings.OAUTH2_TOKEN_URL
    if configured:
        return str(configured)
    issuers = m2m_settings.issuers
    if not issuers:
        warn("DRF_M2M_AUTH['ISSUER'] is not set: the OAuth2 tokenUrl is unknown")
        return "https://issuer.invalid/oauth/token"
    url = discovered_token_url(issuers[0])
    if url is None:
        url = issuers[0].rstrip("/") + "/oauth/token"
        warn(
            f"no token_endpoint in the discovery document of {issuers[0]!r}; guessing tokenUrl {url!r}. "
            "Set SPECTACULAR_SETTINGS['OAUTH2_TOKEN_URL']."
        )
    return url


def _scope_permissions(permissions: list[Any]) -> list[Any]:
    """HasScopes instances in the view's permissions, looking inside ``&`` and ``|`` (not ``~``)."""
    from ..permissions import HasScopes

    found, todo = [], list(permissions)
    while todo:
        perm = todo.pop(0)
        if isinstance(perm, HasScopes):
            found.append(perm)
        elif hasattr(perm, "op2"):  # DRF's AND / OR, and our _OR
            todo += [perm.op1, perm.op2]
    return found


def required_scopes(auto_schema: Any) -> tuple[list[str], str | None]:
    """The scopes HasScopes requires for this operation (view + action + method), and, when no token can
    reach it (a HasScopes with no entry for it, or misconfigured), why."""
    view, method = auto_schema.view, auto_schema.method.upper()
    try:
        permissions = view.get_permissions()
    except Exception:  # a view whose permissions need a real request: nothing to document
        return [], None
    request = SimpleNamespace(method=method)  # what get_required_scopes reads; DRF's generator set view.action
    scopes: set[str] = set()
    unreachable = None
    for perm in _scope_permissions(permissions):
        try:
            needed = perm.get_required_scopes(request, view)
        except ImproperlyConfigured as exc:
            unreachable = str(exc)
            continue
        if needed is None:
            action = getattr(view, "action", None)
            unreachable = (
                f"{type(view).__name__}.required_scopes has no entry for action {action!r} nor method {method}: "
                "HasScopes denies every such request (403)"
            )
            continue
        scopes |= needed
    return sorted(scopes), unreachable


def operation_scopes(auto_schema: Any) -> list[str]:
    """The scopes HasScopes requires for this operation (view + action + method)."""
    return required_scopes(auto_schema)[0]


def _answer_403_only(auto_schema: Any, why: str) -> None:
    """Make this operation's only documented response a 403 saying no token can reach it.

    drf-spectacular computes the responses after the security requirement, on the same AutoSchema;
    the override answers for this (path, method) only, since a schema instance set on a view class
    serves each of its operations in turn.
    """
    key = (auto_schema.path, auto_schema.method)
    own = type(auto_schema).get_response_serializers
    description = (
        f"Forbidden for every access token: no scope grants this operation, so the server always answers 403. ({why})"
    )

    def get_response_serializers() -> Any:
        if (auto_schema.path, auto_schema.method) == key:
            return {403: OpenApiResponse(description=description)}
        return own(auto_schema)

    auto_schema.get_response_serializers = get_response_serializers


class M2MJWTAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "drf_m2m_auth.authentication.M2MJWTAuthentication"
    name = SCHEME_NAME
    match_subclasses = True

    def get_security_requirement(self, auto_schema: Any) -> dict[str, list[str]]:
        scopes, unreachable = required_scopes(auto_schema)
        if unreachable is not None:
            warn(unreachable)
            _answer_403_only(auto_schema, unreachable)
        return {SCHEME_NAME: scopes}

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        scopes = operation_scopes(auto_schema)
        try:
            # drf-spectacular keeps the first definition registered under this name: grow its scopes in
            # place, so the scheme ends up listing the union over every operation.
            definition = auto_schema.registry[(SCHEME_NAME, ResolvedComponent.SECURITY_SCHEMA)].schema
        except KeyError:
            definition = {
                "type": "oauth2",
                "description": self._description(),
                "flows": {"clientCredentials": {"tokenUrl": token_url(), "scopes": {}}},
            }
        known = definition["flows"]["clientCredentials"]["scopes"]
        if not set(scopes) <= set(known):
            descriptions = (
                spectacular_settings.OAUTH2_SCOPES if isinstance(spectacular_settings.OAUTH2_SCOPES, dict) else {}
            )
            merged = {**known, **{s: str(descriptions.get(s, "")) for s in scopes if s not in known}}
            known.clear()
            known.update(sorted(merged.items()))
        return definition

    @staticmethod
    def _description() -> str:
        audiences = m2m_settings.audiences
        aud = audiences[0] if len(audiences) == 1 else " or ".join(audiences)
        return (
            "OAuth 2.0 client credentials (machine to machine): get an access token for the audience "
            f"{aud} from the token URL and send it as 'Authorization: Bearer <token>'."
        )
