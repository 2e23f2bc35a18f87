"""The issuer's HTTP endpoints: token, JWKS, discovery. Loopback callers only."""

from __future__ import annotations

import ipaddress
import json

from authlib.oauth2.rfc6749.errors import InsecureTransportError
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseNotFound, JsonResponse, QueryDict
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from . import keys, statuslists
from .conf import issuer_url
from .models import Api
from .server import get_server

MAX_JSON_BODY = 16 * 1024


def loopback_only(view):
    """Refuse any caller not on this machine, even if someone runs the project on 0.0.0.0."""

    def wrapped(request: HttpRequest, *args, **kwargs):
        try:
            local = ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
        except ValueError:
            local = False
        if not local:
            return HttpResponseForbidden("The local issuer answers loopback callers only.")
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def _json_body_as_form(request: HttpRequest) -> None:
    """Auth0 also takes the token request as JSON; present it to authlib as a form."""
    if request.content_type != "application/json" or len(request.body) > MAX_JSON_BODY:
        return
    try:
        data = json.loads(request.body)
    except ValueError:
        return
    if isinstance(data, dict):
        form = QueryDict(mutable=True)
        for name, value in data.items():
            if isinstance(value, str):
                form[name] = value
        request.POST = form


@csrf_exempt
@require_POST
@loopback_only
def token(request: HttpRequest):
    """RFC 6749 4.4 token endpoint (client_credentials only)."""
    _json_body_as_form(request)
    try:
        return get_server().create_token_response(request)
    except InsecureTransportError as exc:  # an http URL on a non-loopback Host header
        return JsonResponse({"error": exc.error, "error_description": exc.description}, status=400)


@require_GET
@loopback_only
def jwks(request: HttpRequest):
    response = JsonResponse(keys.jwks())
    response["Cache-Control"] = "public, max-age=300"
    return response


@require_GET
@loopback_only
def status_list(request: HttpRequest, number: int):
    """draft-ietf-oauth-status-list-20 8.2: the signed Status List Token, statuslist+jwt."""
    if not statuslists.exists(number):
        return HttpResponseNotFound("No such status list.", content_type="text/plain")
    response = HttpResponse(statuslists.status_list_token(number), content_type=statuslists.MEDIA_TYPE)
    response["Cache-Control"] = f"max-age={statuslists.list_ttl()}"
    return response


@require_GET
@loopback_only
def discovery(request: HttpRequest):
    """OpenID discovery / RFC 8414 metadata: ``issuer`` is exactly the ``iss`` of every token."""
    base = issuer_url()
    scopes = sorted({scope for api in Api.objects.all() for scope in api.scope_list})
    return JsonResponse(
        {
            "issuer": base,
            "token_endpoint": base + "oauth/token",
            "jwks_uri": base + ".well-known/jwks.json",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "response_types_supported": [],
            "scopes_supported": scopes,
            "access_token_signing_alg_values_supported": [keys.ALG],
        }
    )


@require_GET
@loopback_only
def index(request: HttpRequest):
    base = issuer_url()
    return JsonResponse(
        {
            "what": "A local client_credentials issuer standing in for Auth0. NOT FOR PRODUCTION.",
            "issuer": base,
            "openid_configuration": base + ".well-known/openid-configuration",
            "token_endpoint": base + "oauth/token",
            "jwks_uri": base + ".well-known/jwks.json",
            "example": f"curl -s -u CLIENT_ID:SECRET -d grant_type=client_credentials "
            f"-d audience=https://service-b.example {base}oauth/token",
        }
    )
