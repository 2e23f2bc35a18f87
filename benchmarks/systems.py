"""The systems under test, each wired the way its documentation or quickstart wires it.

Every system offers the same three things to the worker:

* ``authenticate(request)`` on a DRF ``Request`` (cases A and B), returning ``(user, auth)``;
* ``scoped_view``: an ``as_view()`` callable that needs the scope ``read:data`` (case C);
* ``client_id(result)``: who the token named, checked after every timed sample.

Peers get a small DRF ``BaseAuthentication`` wrapper where the library has none; the wrapper only
reads the header and calls the library's documented per-request API.
"""

from __future__ import annotations

import json
import time
from typing import Any

from common import AUDIENCE, b64d

REQUIRED = ["exp", "iat", "iss", "aud", "sub"]


class PeerUser:
    """Stand-in for request.user where a peer returns only claims."""

    is_authenticated = True
    is_active = True

    def __init__(self, claims: Any):
        self.claims = claims
        self.pk = self.id = claims.get("sub")


def _bearer(request) -> str | None:
    """DRF's own header idiom (get_authorization_header), as a DRF-based integration writes it."""
    from rest_framework.authentication import get_authorization_header
    from rest_framework.exceptions import AuthenticationFailed

    parts = get_authorization_header(request).split()
    if not parts or parts[0].lower() != b"bearer":
        return None
    if len(parts) != 2:
        raise AuthenticationFailed("Invalid Authorization header")
    return parts[1].decode("ascii")


def _scope_permission():
    from rest_framework.permissions import BasePermission

    class ClaimScope(BasePermission):
        """``read:data`` must be in the space-delimited ``scope`` claim (as Auth0 issues it)."""

        def has_permission(self, request, view):
            auth = request.auth
            scope = auth.get("scope") if auth is not None else None
            return isinstance(scope, str) and "read:data" in scope.split()

    return ClaimScope


def _view(authentication_classes, permission_classes):
    from rest_framework.response import Response
    from rest_framework.views import APIView

    class DataView(APIView):
        def get(self, request):
            return Response({"items": [1, 2, 3]})

    DataView.authentication_classes = list(authentication_classes)
    DataView.permission_classes = list(permission_classes)
    return DataView.as_view()


def noauth_view():
    """The same view with no authentication and no permission: the request floor."""
    return _view([], [])


class System:
    name = "?"
    label = "?"
    refetches = False  # does it fetch the JWKS again on an unknown kid (case E)?

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.issuer = cfg["issuer"]
        self.jwks_url = cfg["jwks_url"]
        self.algs = cfg["algorithms"]

    # Django settings this system adds (before django.setup())
    def settings(self) -> dict:
        return {}

    def installed_apps(self) -> list[str]:
        return []

    def setup(self) -> None:
        raise NotImplementedError

    def authenticate(self, request):
        raise NotImplementedError

    def client_id(self, result) -> str | None:
        user, auth = result
        sub = auth.get("sub") if auth is not None else None
        return sub[: -len("@clients")] if isinstance(sub, str) and sub.endswith("@clients") else sub


# -- the floor --------------------------------------------------------------------------------


def _public_key(jwk: dict):
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if jwk["kty"] == "RSA":
        n = int.from_bytes(b64d(jwk["n"]), "big")
        e = int.from_bytes(b64d(jwk["e"]), "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    x = int.from_bytes(b64d(jwk["x"]), "big")
    y = int.from_bytes(b64d(jwk["y"]), "big")
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()


class FloorSystem(System):
    """base64url-decode + json + one ``cryptography`` verify + plain claim checks, nothing else.

    Keys are fetched once over HTTP and kept as ``cryptography`` objects. It is what any library
    must at least do for a token it has not seen; it has no cache of verified tokens.
    """

    name = "floor"
    label = "floor (b64+json+1 verify+claims)"

    def setup(self) -> None:
        import requests
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
        from rest_framework.authentication import BaseAuthentication
        from rest_framework.exceptions import AuthenticationFailed

        doc = requests.get(self.jwks_url, timeout=5).json()
        keys = {k["kid"]: (_public_key(k), k.get("alg")) for k in doc["keys"]}
        algs = frozenset(self.algs)
        issuer, audience = self.issuer, AUDIENCE
        pkcs1, sha256, ecdsa = padding.PKCS1v15(), hashes.SHA256(), ec.ECDSA(hashes.SHA256())
        loads = json.loads

        def verify(raw: str) -> dict:
            h, p, s = raw.split(".")
            header = loads(b64d(h))
            alg = header["alg"]
            if alg not in algs:
                raise ValueError("alg")
            key, key_alg = keys[header["kid"]]
            if key_alg != alg:
                raise ValueError("key alg")
            sig = b64d(s)
            msg = raw[: len(h) + 1 + len(p)].encode("ascii")
            if alg == "RS256":
                key.verify(sig, msg, pkcs1, sha256)
            else:
                if len(sig) != 64:
                    raise ValueError("sig")
                der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
                key.verify(der, msg, ecdsa)
            claims = loads(b64d(p))
            now = time.time()
            exp, iat, aud, sub = claims["exp"], claims["iat"], claims["aud"], claims["sub"]
            if not isinstance(exp, (int, float)) or exp <= now:
                raise ValueError("exp")
            if not isinstance(iat, (int, float)) or iat > now:
                raise ValueError("iat")
            if claims["iss"] != issuer:
                raise ValueError("iss")
            if not (aud == audience if isinstance(aud, str) else isinstance(aud, list) and audience in aud):
                raise ValueError("aud")
            if not isinstance(sub, str) or not sub:
                raise ValueError("sub")
            return claims

        class FloorAuthentication(BaseAuthentication):
            def authenticate(self, request):
                header = request.META.get("HTTP_AUTHORIZATION")
                if not header:
                    return None
                scheme, _, raw = header.partition(" ")
                if scheme.lower() != "bearer":
                    return None
                try:
                    claims = verify(raw)
                except (ValueError, KeyError, TypeError, InvalidSignature) as exc:
                    raise AuthenticationFailed("invalid token") from exc
                return PeerUser(claims), claims

        self.auth_class = FloorAuthentication
        self.authenticate = FloorAuthentication().authenticate
        self.scoped_view = _view([FloorAuthentication], [_scope_permission()])


# -- PyJWT + PyJWKClient ----------------------------------------------------------------------


class PyJWTSystem(System):
    name = "pyjwt"
    label = "PyJWT + PyJWKClient"
    refetches = True

    def setup(self) -> None:
        import jwt
        from rest_framework.authentication import BaseAuthentication
        from rest_framework.exceptions import AuthenticationFailed

        jwks_client = jwt.PyJWKClient(self.jwks_url, cache_keys=True)
        self.jwks_client = jwks_client
        algs, issuer = list(self.algs), self.issuer

        class PyJWTAuthentication(BaseAuthentication):
            def authenticate(self, request):
                raw = _bearer(request)
                if raw is None:
                    return None
                try:
                    key = jwks_client.get_signing_key_from_jwt(raw)
                    claims = jwt.decode(
                        raw, key.key, algorithms=algs, audience=AUDIENCE, issuer=issuer, options={"require": REQUIRED}
                    )
                except jwt.PyJWTError as exc:
                    raise AuthenticationFailed("invalid token") from exc
                return PeerUser(claims), claims

        self.authenticate = PyJWTAuthentication().authenticate
        self.scoped_view = _view([PyJWTAuthentication], [_scope_permission()])


# -- djangorestframework-simplejwt with JWK_URL -----------------------------------------------


class SimpleJWTSystem(System):
    name = "simplejwt"
    label = "simplejwt (JWK_URL)"
    refetches = True

    def installed_apps(self) -> list[str]:
        return []  # the stateless authentication needs no app (no user table, no blacklist)

    def settings(self) -> dict:
        # simplejwt takes one ALGORITHM; this process serves the algorithm of its case.
        return {
            "SIMPLE_JWT": {
                "ALGORITHM": self.cfg["alg"],
                "JWK_URL": self.jwks_url,
                "AUDIENCE": AUDIENCE,
                "ISSUER": self.issuer,
                "VERIFYING_KEY": None,
                "USER_ID_CLAIM": "sub",
                "TOKEN_TYPE_CLAIM": None,  # Auth0 access tokens carry no simplejwt token_type
                "JTI_CLAIM": "jti",
                "AUTH_HEADER_TYPES": ("Bearer",),
            }
        }

    def setup(self) -> None:
        from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication

        self.authenticate = JWTStatelessUserAuthentication().authenticate
        self.scoped_view = _view([JWTStatelessUserAuthentication], [_scope_permission()])

    def client_id(self, result):
        user, token = result
        return System.client_id(self, (user, token.payload))


# -- authlib ResourceProtector, as Auth0's Django quickstart wires it -------------------------


class AuthlibSystem(System):
    name = "authlib"
    label = "authlib ResourceProtector (Auth0 quickstart)"

    def setup(self) -> None:
        from urllib.request import urlopen

        from authlib.integrations.django_oauth2 import ResourceProtector
        from authlib.oauth2 import OAuth2Error
        from authlib.oauth2.rfc6749 import MissingAuthorizationError
        from authlib.oauth2.rfc7523 import JWTBearerTokenValidator
        from joserfc.jwk import KeySet
        from rest_framework.authentication import BaseAuthentication
        from rest_framework.exceptions import AuthenticationFailed

        jwks_url, issuer = self.jwks_url, self.issuer

        class Auth0JWTBearerTokenValidator(JWTBearerTokenValidator):
            # The quickstart's validator. It reads the JWKS once, at construction (module import
            # in the quickstart), and never again. The quickstart imports the set with
            # authlib.jose's JsonWebKey.import_key_set; authlib >= 1.7 validates with joserfc and
            # rejects that object ("Invalid key"), and its deprecation message names joserfc's
            # KeySet.import_key_set, which is used here.
            def __init__(self, audience):
                jsonurl = urlopen(jwks_url)  # noqa: S310 (the quickstart's own call; http://127.0.0.1 here)
                public_key = KeySet.import_key_set(json.loads(jsonurl.read()))
                super().__init__(public_key)
                self.claims_options = {
                    "exp": {"essential": True},
                    "aud": {"essential": True, "value": audience},
                    "iss": {"essential": True, "value": issuer},
                }

        require_auth = ResourceProtector()
        require_auth.register_token_validator(Auth0JWTBearerTokenValidator(AUDIENCE))
        self.require_auth = require_auth

        class AuthlibAuthentication(BaseAuthentication):
            def authenticate(self, request):
                try:
                    token = require_auth.acquire_token(request._request)
                except MissingAuthorizationError:
                    return None
                except OAuth2Error as exc:
                    raise AuthenticationFailed("invalid token") from exc
                return PeerUser(token), token

        self.authenticate = AuthlibAuthentication().authenticate
        # The quickstart decorates the view: @require_auth("read:messages").
        self.scoped_view = require_auth("read:data")(noauth_view())


# -- joserfc jwt.decode + JWTClaimsRegistry ---------------------------------------------------


class JoserfcSystem(System):
    name = "joserfc"
    label = "joserfc jwt.decode + claims registry"

    def setup(self) -> None:
        import requests
        from joserfc import jwt
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet
        from rest_framework.authentication import BaseAuthentication
        from rest_framework.exceptions import AuthenticationFailed

        keyset = KeySet.import_key_set(requests.get(self.jwks_url, timeout=5).json())
        registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": AUDIENCE},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
        )
        algs = list(self.algs)

        class JoserfcAuthentication(BaseAuthentication):
            def authenticate(self, request):
                raw = _bearer(request)
                if raw is None:
                    return None
                try:
                    token = jwt.decode(raw, keyset, algorithms=algs)
                    registry.validate(token.claims)
                except (JoseError, ValueError, TypeError, KeyError) as exc:
                    raise AuthenticationFailed("invalid token") from exc
                return PeerUser(token.claims), token.claims

        self.authenticate = JoserfcAuthentication().authenticate
        self.scoped_view = _view([JoserfcAuthentication], [_scope_permission()])


# -- ours -------------------------------------------------------------------------------------


class OursSystem(System):
    name = "ours"
    label = "drf_m2m_auth (ours)"
    refetches = True

    def installed_apps(self) -> list[str]:
        return ["drf_m2m_auth"]

    def settings(self) -> dict:
        return {
            "DRF_M2M_AUTH": {
                "ISSUER": self.issuer,
                "AUDIENCE": AUDIENCE,
                "JWKS_URL": self.jwks_url,
                "ALGORITHMS": list(self.algs),
                "CACHE": "default",
            }
        }

    def setup(self) -> None:
        from drf_m2m_auth.authentication import M2MJWTAuthentication
        from drf_m2m_auth.permissions import HasScopes

        self.auth_class = M2MJWTAuthentication
        self.authenticate = M2MJWTAuthentication().authenticate
        self.scoped_view = _scoped_ours_view([M2MJWTAuthentication], [HasScopes])

    def client_id(self, result):
        user, token = result
        return token.client_id


def _scoped_ours_view(authentication_classes, permission_classes, resource_name=None):
    from rest_framework.response import Response
    from rest_framework.views import APIView

    class DataView(APIView):
        required_scopes = ["read:data"]

        def get(self, request):
            return Response({"items": [1, 2, 3]})

    DataView.authentication_classes = list(authentication_classes)
    DataView.permission_classes = list(permission_classes)
    if resource_name:
        DataView.resource_name = resource_name
    return DataView.as_view()


class BaselineSystem(OursSystem):
    """ours at an earlier revision (run.py --baseline REV): the worker imports that tree first."""

    name = "baseline"
    label = "drf_m2m_auth at the baseline revision"


SYSTEMS = {
    cls.name: cls
    for cls in (FloorSystem, OursSystem, BaselineSystem, PyJWTSystem, SimpleJWTSystem, AuthlibSystem, JoserfcSystem)
}
