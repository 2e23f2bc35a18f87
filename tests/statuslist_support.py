"""A real Status List endpoint on 127.0.0.1 and helpers to build lists and Status List Tokens."""

from __future__ import annotations

import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from drf_m2m_auth.testing import FakeIssuer, b64url, encode_jws


def pack(statuses: dict[int, int], bits: int = 1, size: int = 64) -> bytes:
    """The byte array of draft 20 section 4.1: statuses packed from the least significant bit."""
    per_byte = 8 // bits
    data = bytearray((size + per_byte - 1) // per_byte)
    for idx, value in statuses.items():
        data[idx // per_byte] |= value << ((idx % per_byte) * bits)
    return bytes(data)


def encode_lst(data: bytes) -> str:
    return b64url(zlib.compress(data, 9))


def list_token(
    fake: FakeIssuer,
    uri: str,
    statuses: dict[int, int] | None = None,
    *,
    bits: int = 1,
    size: int = 64,
    lst: str | None = None,
    ttl: Any = 60,
    header: dict | None = None,
    omit: tuple = (),
    key: Any = None,
    **claims: Any,
) -> str:
    """A Status List Token signed by the fake issuer's current key (or ``key``, a (kid, alg, key))."""
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": uri,
        "iss": fake.issuer,
        "iat": now,
        "exp": now + 3600,
        "ttl": ttl,
        "status_list": {"bits": bits, "lst": lst if lst is not None else encode_lst(pack(statuses or {}, bits, size))},
    }
    if ttl is None:
        del body["ttl"]
    body.update(claims)
    for name in omit:
        body.pop(name, None)
    kid, alg, private = key or fake.keys[-1]
    hdr = {"alg": alg, "typ": "statuslist+jwt", "kid": kid}
    hdr.update(header or {})
    return encode_jws(hdr, body, private, alg)


class StatusListServer:
    """Serves ``bodies[path]`` at http://127.0.0.1:<port><path>; counts requests per path.

    ``mode``: "ok", "down" (503), "slow" (sleeps ``delay`` first), "redirect" (302 elsewhere).
    """

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.max_age: int | None = None
        self.encoding: str | None = None  # a Content-Encoding: the body is sent as given, labelled so
        self.mode = "ok"
        self.delay = 0.0
        self.requests: dict[str, int] = {}
        self.accept: list[str] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def url(self, n: int | str = 1) -> str:
        return f"{self.base}/statuslists/{n}"

    def publish(self, uri: str, token: str | bytes) -> None:
        path = uri[len(self.base) :]
        self.bodies[path] = token.encode() if isinstance(token, str) else token

    def count(self, uri: str) -> int:
        return self.requests.get(uri[len(self.base) :], 0)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with server.lock:
                    server.requests[self.path] = server.requests.get(self.path, 0) + 1
                    server.accept.append(self.headers.get("Accept", ""))
                if server.mode == "slow":
                    time.sleep(server.delay)
                if server.mode == "down":
                    return self._send(503, b"down")
                if server.mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", server.url("elsewhere"))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                body = server.bodies.get(self.path)
                if body is None:
                    return self._send(404, b"no such list")
                return self._send(200, body, "application/statuslist+jwt")

            def _send(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if server.max_age is not None:
                    self.send_header("Cache-Control", f"max-age={server.max_age}")
                if server.encoding is not None and code == 200:
                    self.send_header("Content-Encoding", server.encoding)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass

        return Handler
