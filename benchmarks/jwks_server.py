"""A JWKS (and OIDC discovery) server on 127.0.0.1 that counts fetches per namespace.

Every URL is ``/<namespace>/jwks.json`` (or ``/<namespace>/.well-known/...``); each scenario uses its
own namespace, so fetch counts never mix. A namespace can be given a response delay to stand in for
an issuer's round-trip time (it widens the window in which a cold cache is raced).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    server: JWKSServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        srv = self.server
        parts = self.path.split("?", 1)[0].strip("/").split("/", 1)
        ns, rest = (parts + [""])[:2]
        ctype = "application/json"
        if rest == "jwks.json":
            body = srv.jwks_body
        elif rest == "statuslists/1" and srv.status_list_body is not None:
            body, ctype = srv.status_list_body, "application/statuslist+jwt"
        elif rest == ".well-known/openid-configuration":
            body = json.dumps({"issuer": srv.issuer, "jwks_uri": f"{srv.base_url}{ns}/jwks.json"}).encode()
        else:
            self.send_error(404)
            return
        with srv.lock:
            srv.fetches[(ns, rest)] += 1
            delay = srv.delays.get(ns, 0.0)
        if delay:
            time.sleep(delay)
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "public, max-age=600")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # quiet
        pass


class JWKSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, jwks: dict, port: int = 0):
        super().__init__(("127.0.0.1", port), _Handler)
        self.lock = threading.Lock()
        self.fetches: Counter = Counter()
        self.delays: dict[str, float] = {}
        self.jwks_body = json.dumps(jwks).encode()
        self.status_list_body: bytes | None = None  # the Status List Token of case AS, at <ns>/statuslists/1
        self.base_url = f"http://127.0.0.1:{self.server_address[1]}/"
        # One issuer for every namespace: tokens are minted before the namespaces are chosen.
        self.issuer = self.base_url
        self._thread: threading.Thread | None = None

    def jwks_url(self, ns: str) -> str:
        return f"{self.base_url}{ns}/jwks.json"

    def count(self, ns: str) -> int:
        with self.lock:
            return self.fetches[(ns, "jwks.json")]

    def start(self) -> JWKSServer:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.2}, name="jwks-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
