"""A small threaded HTTP server for one process of the demo / end-to-end tests (127.0.0.1 only)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.core.wsgi import get_wsgi_application


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = False  # a taken port must fail loudly, so the parent picks another


class _Handler(WSGIRequestHandler):
    def log_message(self, format, *args):
        # One line per request to stderr (the parent keeps it in a log file); never headers.
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class Command(BaseCommand):
    help = (
        "Serve this project on 127.0.0.1:PORT until the parent process exits, SIGTERM, or "
        "--max-lifetime; optionally migrate and seed first. Not a production server."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--migrate", action="store_true", help="migrate the database first")
        parser.add_argument("--seed", default=None, help="a JSON scenario file (see testproject.api.scenario)")
        parser.add_argument("--max-lifetime", type=float, default=600.0, help="seconds, then exit")

    def handle(self, *args, port, migrate, seed, max_lifetime, **options):
        if migrate:
            call_command("migrate", verbosity=0, interactive=False)
        if seed:
            self._seed(seed)
        server = _Server(("127.0.0.1", port), _Handler)
        server.set_app(get_wsgi_application())
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
        threading.Thread(target=self._watch, args=(server, stop, max_lifetime), daemon=True).start()
        self.stdout.write(f"serving {settings.TESTPROJECT_ROLE} on http://127.0.0.1:{port}/", ending="\n")
        self.stdout.flush()
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            server.server_close()

    @staticmethod
    def _watch(server, stop, max_lifetime):
        # Shut down on our own: when the parent that started us is gone, on SIGTERM, or at the deadline.
        parent, deadline = os.getppid(), time.monotonic() + max_lifetime
        while not stop.wait(0.3):
            if os.getppid() != parent or time.monotonic() > deadline:
                break
        server.shutdown()

    @staticmethod
    def _seed(path):
        with open(path) as f:
            spec = json.load(f)
        role = getattr(settings, "TESTPROJECT_ROLE", "all")
        if role in ("all", "issuer") and "issuer" in spec:
            from testproject.issuer.seed import apply

            apply(spec["issuer"])
        if role in ("all", "api") and "service_b" in spec:
            from testproject.api.seed import apply

            apply(spec["service_b"])
