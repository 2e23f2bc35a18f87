"""Test helpers: a FakeIssuer minting real signed tokens, a loopback JWKS server, pytest fixtures.

For testing your own API without Auth0 and without network::

    def test_orders(m2m_issuer, client):
        token = m2m_issuer.token(sub="svc-a@clients", scopes=["read:orders"])
        response = client.get("/orders/", HTTP_AUTHORIZATION=f"Bearer {token}")

The ``m2m_issuer`` fixture starts a JWKS server on 127.0.0.1 and points DRF_M2M_AUTH at it.
Never use any of this in production: the keys live in memory and the server speaks plain http.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .jose import b64url_encode, generate_private_key, sign
from .jose import public_jwk as jose_public_jwk

__all__ = [
    "FakeClock",
    "FakeIssuer",
    "JWKSServer",
    "generate_private_key",
    "public_jwk",
    "m2m_issuer",
    "m2m_jwks_server",
]


def b64url(data: bytes | str) -> str:
    return b64url_encode(data)


def public_jwk(private_key: Any, kid: str | None, alg: str | None = None, use: str | None = "sig") -> dict:
    jwk: dict[str, Any] = dict(jose_public_jwk(private_key)[1])
    if kid is not None:
        jwk["kid"] = kid
    if alg:
        jwk["alg"] = alg
    if use:
        jwk["use"] = use
    return jwk


def encode_jws(
    header: dict, claims: Any, private_key: Any = None, alg: str | None = None, signature: bytes | None = None
) -> str:
    """Compact JWS from arbitrary header/claims: for well-formed and deliberately hostile tokens."""
    payload = claims if isinstance(claims, (bytes, str)) else json.dumps(claims, separators=(",", ":"))
    signing_input = f"{b64url(json.dumps(header, separators=(',', ':')))}.{b64url(payload)}"
    if signature is None:
        signature = sign(private_key, alg or header["alg"], signing_input.encode()) if private_key else b""
    return f"{signing_input}.{b64url(signature)}"


class FakeClock:
    """A clock for the core's ``clock=`` seams: ``clock()`` returns ``now``; move it with ``advance()``.

    ``FakeClock()`` starts at the current wall-clock time (tokens minted by FakeIssuer are then
    valid); ``FakeClock(1000.0)`` at a fixed instant.
    """

    def __init__(self, now: float | None = None):
        self.now = time.time() if now is None else float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now!r})"


class FakeIssuer:
    """An in-memory OAuth issuer: signing keys, a JWKS, and ``token()`` for valid or broken tokens."""

    def __init__(
        self,
        issuer: str = "https://issuer.example/",
        audience: str = "https://api.example",
        alg: str = "RS256",
        kid: str | None = None,
    ):
        self.issuer = issuer
        self.audience = audience
        self.alg = alg
        self.keys: list[tuple[str, str, Any]] = []  # (kid, alg, private key), newest last
        self.add_key(alg, kid or f"key-{uuid.uuid4().hex[:8]}")

    @property
    def kid(self) -> str:
        return self.keys[-1][0]

    @property
    def private_key(self) -> Any:
        return self.keys[-1][2]

    def add_key(self, alg: str | None = None, kid: str | None = None) -> str:
        alg = alg or self.alg
        kid = kid or f"key-{uuid.uuid4().hex[:8]}"
        self.keys.append((kid, alg, generate_private_key(alg)))
        return kid

    def rotate(self, retire_old: bool = False) -> str:
        """Publish a new key and sign with it from now on; optionally stop publishing the others."""
        kid = self.add_key()
        if retire_old:
            self.keys = self.keys[-1:]
        return kid

    def jwks(self) -> dict:
        return {"keys": [public_jwk(key, kid, alg) for kid, alg, key in self.keys]}

    def claims(
        self, sub: str = "svc-a@clients", scopes: Any = ("read:data",), *, expires_in: int = 3600, **extra: Any
    ) -> dict:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "iat": now,
            "exp": now + expires_in,
            "jti": uuid.uuid4().hex,
        }
        if scopes is not None:
            claims["scope"] = scopes if isinstance(scopes, str) else " ".join(scopes)
        claims.update(extra)
        return claims

    def token(
        self,
        sub: str = "svc-a@clients",
        scopes: Any = ("read:data",),
        *,
        expires_in: int = 3600,
        header: dict | None = None,
        omit: tuple = (),
        kid: Any = ...,
        **claims: Any,
    ) -> str:
        """A signed token; ``omit`` drops claims, ``header`` overrides header fields (e.g. typ)."""
        body = self.claims(sub, scopes, expires_in=expires_in, **claims)
        for name in omit:
            body.pop(name, None)
        key_kid, alg, key = self.keys[-1]
        hdr: dict[str, Any] = {"alg": alg, "typ": "at+jwt", "kid": key_kid if kid is ... else kid}
        if hdr["kid"] is None:
            del hdr["kid"]
        hdr.update(header or {})
        return encode_jws(hdr, body, key, alg)

    def settings(self, **overrides: Any) -> dict:
        conf = {"ISSUER": self.issuer, "AUDIENCE": self.audience, "ALGORITHMS": sorted({a for _, a, _ in self.keys})}
        conf.update(overrides)
        return conf


class JWKSServer:
    """A real HTTP JWKS + OIDC discovery endpoint on 127.0.0.1 for tests (counts requests).

    ``mode``: "ok", "down" (503), "slow" (sleeps ``delay`` seconds), "garbage", "huge", "html".
    """

    def __init__(self, issuer: FakeIssuer | None = None, *, max_age: int | None = 300):
        self.fake = issuer or FakeIssuer()
        self.mode = "ok"
        self.delay = 0.0
        self.max_age = max_age
        self.jwks_requests = 0
        self.discovery_requests = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        # A unique path per server: a reused port never meets another issuer's cached JWKS.
        self.fake.issuer = f"{self.base}/{uuid.uuid4().hex[:8]}/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def jwks_url(self) -> str:
        return self.base + "/.well-known/jwks.json"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> JWKSServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _handler(self) -> type:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                with server.lock:
                    if path.endswith("/jwks.json"):
                        server.jwks_requests += 1
                    elif path.endswith("/openid-configuration"):
                        server.discovery_requests += 1
                mode = server.mode
                if mode == "slow":
                    time.sleep(server.delay)
                if mode == "down":
                    return self._send(503, b"unavailable", "text/plain")
                if path.endswith("/.well-known/openid-configuration"):
                    doc = {
                        "issuer": server.fake.issuer,
                        "jwks_uri": server.jwks_url,
                        "token_endpoint": server.base + "/oauth/token",
                    }
                    return self._send(200, json.dumps(doc).encode())
                if not path.endswith("/.well-known/jwks.json"):
                    return self._send(404, b"{}")
                if mode == "garbage":
                    return self._send(200, b"\x00\xff{not json")
                if mode == "html":
                    return self._send(200, b"<html>login</html>", "text/html")
                if mode == "huge":
                    return self._send(200, b'{"keys": [' + b'{"kty": "RSA"},' * 200000 + b"{}]}")
                return self._send(200, json.dumps(server.fake.jwks()).encode())

            def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if server.max_age is not None:
                    self.send_header("Cache-Control", f"public, max-age={server.max_age}")
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass

        return Handler


# --- pytest plugin (registered through the pytest11 entry point) ------------------------------------

try:
    import pytest
except ImportError:  # the helpers above work without pytest
    pytest = None  # type: ignore[assignment]


def _fixture(func):
    return pytest.fixture(func) if pytest is not None else func


@_fixture
def m2m_jwks_server():
    """A running JWKSServer with a fresh FakeIssuer (RS256); stopped after the test."""
    server = JWKSServer()
    yield server
    server.stop()


@_fixture
def m2m_issuer(m2m_jwks_server, settings):
    """A FakeIssuer whose JWKS is served on 127.0.0.1, with DRF_M2M_AUTH pointing at it."""
    fake = m2m_jwks_server.fake
    settings.DRF_M2M_AUTH = fake.settings(JWKS_URL=m2m_jwks_server.jwks_url)
    yield fake
