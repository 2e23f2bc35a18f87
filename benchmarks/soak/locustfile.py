"""Locust load for the soak run, usable on its own against a real deployment.

Each request is either the authenticated endpoint with one client's bearer token (clients chosen
with a Zipf distribution: a few hot clients, a long tail), a token that must be refused, or the
no-auth floor of the same service. Every request is written to a JSONL history (one line: client,
token kind, token generation, time sent, time answered, status, answering worker) for
``benchmarks/soak/checker.py``.

Against your own deployment::

    SOAK_TOKENS=tokens.json SOAK_HISTORY=history.jsonl SOAK_AUTH_PATH=/api/orders/ \\
    SOAK_FLOOR_PATH=/healthz locust -f benchmarks/soak/locustfile.py --headless \\
        -u 20 -r 20 -t 5m --host https://api.example.com

Environment (defaults in brackets):

- ``SOAK_TOKENS``: JSON ``{"generation": N, "tokens": [{"client", "kind", "token"}, ...]}``; kind
  ``valid`` (Zipf-chosen), ``watch_*`` (clients whose state changes during the run, asked at a fixed
  share), anything else is an invalid token (``expired``, ``wrong_aud``, ``tampered``,
  ``revoked_client``). The file is re-read when it changes (a key rotation brings new tokens).
- ``SOAK_HISTORY`` [soak-history.jsonl]; ``SOAK_AUTH_PATH`` [/orders/]; ``SOAK_FLOOR_PATH`` [/floor/]
- shares of requests: ``SOAK_FLOOR_SHARE`` [0.2], ``SOAK_INVALID_SHARE`` [0.1],
  ``SOAK_WATCH_SHARE`` [0.1]; ``SOAK_ZIPF_S`` [1.1]
- ``SOAK_RATE``: requests per second per user [10]; ``SOAK_MAX_REQUESTS``: stop after this many
  [no bound; ``-t`` bounds the time]; ``SOAK_TIMEOUT``: seconds before a request counts as a
  timeout (a failure) [10].
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import random
import time

from locust import events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.user.wait_time import constant_throughput

AUTH_PATH = os.environ.get("SOAK_AUTH_PATH", "/orders/")
FLOOR_PATH = os.environ.get("SOAK_FLOOR_PATH", "/floor/")
FLOOR_SHARE = float(os.environ.get("SOAK_FLOOR_SHARE", "0.2"))
INVALID_SHARE = float(os.environ.get("SOAK_INVALID_SHARE", "0.1"))
WATCH_SHARE = float(os.environ.get("SOAK_WATCH_SHARE", "0.1"))
ZIPF_S = float(os.environ.get("SOAK_ZIPF_S", "1.1"))
MAX_REQUESTS = int(os.environ.get("SOAK_MAX_REQUESTS", "0"))
TIMEOUT = float(os.environ.get("SOAK_TIMEOUT", "10"))
RELOAD_EVERY = 0.05  # seconds between looks at the token file


class TokenPool:
    """The current token generation, re-read when the file changes."""

    def __init__(self, path: str):
        self.path = path
        self.mtime = -1
        self.checked = 0.0
        self.generation = -1
        self.reload()

    def reload(self) -> None:
        now = time.monotonic()
        if now - self.checked < RELOAD_EVERY:
            return
        self.checked = now
        mtime = os.stat(self.path).st_mtime_ns
        if mtime == self.mtime:
            return
        with open(self.path) as f:
            data = json.load(f)
        self.mtime = mtime
        self.generation = data.get("generation", 0)
        tokens = data["tokens"]
        self.valid = [t for t in tokens if t["kind"] == "valid"]
        self.watch = [t for t in tokens if t["kind"].startswith("watch")]
        self.invalid = [t for t in tokens if t["kind"] != "valid" and not t["kind"].startswith("watch")]
        # Zipf: the client of rank r is chosen with weight 1 / r**s.
        self.cumulative = list(itertools.accumulate(1 / (r**ZIPF_S) for r in range(1, len(self.valid) + 1)))

    def pick(self, rng: random.Random) -> dict:
        self.reload()
        roll = rng.random()
        if self.invalid and roll < INVALID_SHARE:
            return rng.choice(self.invalid)
        if self.watch and roll < INVALID_SHARE + WATCH_SHARE:
            return rng.choice(self.watch)
        index = bisect.bisect_left(self.cumulative, rng.random() * self.cumulative[-1])
        return self.valid[min(index, len(self.valid) - 1)]


class History:
    def __init__(self, path: str):
        self.file = open(path, "a", buffering=1 << 16)  # noqa: SIM115 -- closed at quit
        self.count = 0

    def write(self, record: dict) -> None:
        if self.file.closed:  # answered after Locust began quitting (SIGTERM): after the load window
            return
        self.file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.count += 1

    def close(self) -> None:
        self.file.close()


POOL: TokenPool | None = None
HISTORY: History | None = None


@events.init.add_listener
def on_init(environment, **kwargs):
    global POOL, HISTORY
    POOL = TokenPool(os.environ["SOAK_TOKENS"])
    HISTORY = History(os.environ.get("SOAK_HISTORY", "soak-history.jsonl"))


@events.request.add_listener
def on_request(request_type, name, response_time, response, context, exception, start_time, **kwargs):
    status = getattr(response, "status_code", 0) or 0
    headers = getattr(response, "headers", None) or {}
    record = {
        "path": name,
        "t0": start_time,
        "t1": start_time + (response_time or 0) / 1000,
        "status": status,
        "pid": headers.get("X-Worker-Pid"),
        **context,
    }
    if exception is not None and not status:
        record["error"] = type(exception).__name__
    elif status == 401 and context.get("kind") != "floor":
        record["www"] = headers.get("WWW-Authenticate", "")[:200]  # the reason, never the token
    HISTORY.write(record)
    if MAX_REQUESTS and HISTORY.count >= MAX_REQUESTS:
        runner = getattr(on_request, "runner", None)
        if runner is not None and not getattr(on_request, "stopping", False):
            on_request.stopping = True
            import gevent

            gevent.spawn(runner.quit)


@events.test_start.add_listener
def on_test_start(environment, **kwargs):
    on_request.runner = environment.runner


@events.quitting.add_listener
def on_quitting(environment, **kwargs):
    if HISTORY is not None:
        HISTORY.close()


class Client(FastHttpUser):
    wait_time = constant_throughput(float(os.environ.get("SOAK_RATE", "10")))
    network_timeout = TIMEOUT
    connection_timeout = TIMEOUT

    def on_start(self):
        self.rng = random.Random()

    @task
    def one_request(self):
        if self.rng.random() < FLOOR_SHARE:
            self.client.get(FLOOR_PATH, name="floor", context={"kind": "floor"})
            return
        pool = POOL
        token = pool.pick(self.rng)
        self.client.get(
            AUTH_PATH,
            name="auth",
            headers={"Authorization": "Bearer " + token["token"]},
            context={"client": token["client"], "kind": token["kind"], "gen": pool.generation},
        )
