"""A token endpoint and a protected API on 127.0.0.1, served from a background thread."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class LocalIssuer:
    """``POST /oauth/token`` issues ``tok-<n>``; ``/data`` accepts issued, unrevoked tokens.

    ``script`` is a list of ``(status, headers, body)`` answers the token endpoint gives first;
    a body that is a dict is sent as JSON. ``delay`` slows every token answer, widening races.
    """

    def __init__(self, expires_in=3600):
        self.expires_in = expires_in
        self.delay = 0.0
        self.script = []
        self.token_requests = []  # (headers, form) of every token request
        self.api_requests = 0
        self.api_log = []  # (Host, Authorization) of every API request
        self.issued, self.revoked = set(), set()
        self.reject_everything = False
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_url(self):
        return self.base_url + "/oauth/token"

    @property
    def api_url(self):
        return self.base_url + "/data"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def token_answer(self, form):
        with self._lock:
            self.token_requests.append(form)
            if self.script:
                return self.script.pop(0)
            token = f"tok-{len(self.token_requests)}"
            self.issued.add(token)
        return 200, {}, {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}

    def api_answer(self, host, authorization):
        with self._lock:
            self.api_requests += 1
            self.api_log.append((host, authorization))
            token = authorization[len("Bearer ") :] if authorization.startswith("Bearer ") else ""
            ok = token in self.issued and token not in self.revoked and not self.reject_everything
        if ok:
            return 200, {}, {"ok": True, "token": token}
        return 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, {"detail": "no"}


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that timed out and hung up is part of the tests, not a failure


def _handler_for(issuer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive and no Nagle delay: 1,000 calls stay fast
        disable_nagle_algorithm = True

        def do_POST(self):
            if self.path == "/oauth/token":
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                form["_authorization"] = self.headers.get("Authorization")
                answer = issuer.token_answer(form)
                time.sleep(issuer.delay)
                self._send(*answer)
            else:
                self.do_GET()

        def do_GET(self):
            if self.path == "/elsewhere":  # a redirect to another host name for the same server
                port = issuer._server.server_address[1]
                return self._send(302, {"Location": f"http://localhost:{port}/data"}, "")
            answer = issuer.api_answer(self.headers["Host"], self.headers.get("Authorization", ""))
            if "Content-Length" not in self.headers and self.command == "POST":
                self.close_connection = True  # a streamed body we did not read
            else:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._send(*answer)

        def _send(self, status, headers, body):
            data = json.dumps(body).encode() if isinstance(body, dict) else body.encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # keep test output quiet
            pass

    return Handler
