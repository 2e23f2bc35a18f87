"""Loopback servers for the calling side's DPoP tests: a token endpoint minting DPoP-bound tokens, and a
resource that checks proofs with drf_m2m_auth.dpop. Both can demand server nonces (RFC 9449 8, 9)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from drf_m2m_auth.dpop import DPoPVerifier, NonceSource
from drf_m2m_auth.errors import InvalidToken, UseDPoPNonce
from drf_m2m_auth.testing import FakeIssuer


class _Server:
    def __init__(self, *, require_nonce: bool):
        self.nonces = NonceSource(b"test-" + type(self).__name__.encode(), lifetime=300) if require_nonce else None
        self.verifier = DPoPVerifier(nonces=self.nonces)
        self.seen: list[dict[str, Any]] = []  # one entry per request: what arrived and what we answered
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def handle(self, request: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict, dict]:
        raise NotImplementedError

    def _handler(self) -> type:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, payload = server.handle(self, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

        return Handler


class DPoPTokenEndpoint(_Server):
    """POST /oauth/token (client_credentials): a valid DPoP proof gets a token bound to its key."""

    def __init__(self, issuer: FakeIssuer, *, require_nonce: bool = True):
        self.issuer = issuer
        super().__init__(require_nonce=require_nonce)
        self.token_url = self.url + "/oauth/token"

    def handle(self, request, body):
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        proofs = request.headers.get_all("DPoP") or []
        record = {"form": form, "proof": proofs[0] if proofs else None}
        with self.lock:
            self.seen.append(record)
        try:
            proof = self.verifier.verify(",".join(proofs) or None, method="POST", url=self.token_url)
        except UseDPoPNonce as exc:
            record["answer"] = "use_dpop_nonce"
            return 400, {"DPoP-Nonce": exc.nonce}, {"error": "use_dpop_nonce", "error_description": exc.description}
        except InvalidToken as exc:
            record["answer"] = "invalid_dpop_proof"
            return 400, {}, {"error": "invalid_dpop_proof", "error_description": exc.description}
        token = self.issuer.token(sub=f"{form.get('client_id')}@clients", cnf={"jkt": proof.jkt})
        record["answer"], record["jkt"] = "token", proof.jkt
        return 200, {}, {"access_token": token, "token_type": "DPoP", "expires_in": 3600}


class DPoPResource(_Server):
    """GET/POST anything: 200 only with ``Authorization: DPoP`` and a proof bound to the token's key."""

    def handle(self, request, body):
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        proof_value = request.headers.get("DPoP")
        record = {"scheme": scheme, "proof": proof_value, "path": request.path, "at": time.time()}
        with self.lock:
            self.seen.append(record)
        try:
            claims = json.loads(_b64(token.split(".")[1]))
            self.verifier.verify(
                proof_value,
                method=request.command,
                url=self.url + request.path,
                access_token=token,
                jkt=claims["cnf"]["jkt"],
            )
        except UseDPoPNonce as exc:
            record["answer"] = "use_dpop_nonce"
            return (
                401,
                {
                    "DPoP-Nonce": exc.nonce,
                    "WWW-Authenticate": f'DPoP error="use_dpop_nonce", '
                    f'error_description="{exc.description}", algs="ES256"',
                },
                {},
            )
        except (InvalidToken, ValueError, KeyError, IndexError) as exc:
            record["answer"] = "rejected"
            return 401, {"WWW-Authenticate": f'DPoP error="invalid_dpop_proof", algs="ES256" ({exc!r})'}, {}
        record["answer"] = "ok"
        return 200, {}, {"ok": True}


def _b64(segment: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
