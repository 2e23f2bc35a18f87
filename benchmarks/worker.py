"""One system under test in its own process, driven by run.py over a JSON-lines protocol.

stdin: one JSON command per line; stdout: one JSON reply per line (anything else the process
prints goes to stderr). The worker exits when stdin closes or after an idle timeout, so no worker
outlives the run.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))  # the checkout, so drf_m2m_auth imports uninstalled
if os.environ.get("M2M_BENCH_PACKAGE_SRC"):  # run.py --baseline: an extracted older drf_m2m_auth
    sys.path.insert(0, os.environ["M2M_BENCH_PACKAGE_SRC"])

from common import CLIENT_ID  # noqa: E402

IDLE_TIMEOUT = 900  # seconds without a command: the coordinator is gone, exit

# A request as a real client sends it (the headers Django parses when request.headers is read).
BASE_ENVIRON = {
    "REQUEST_METHOD": "GET",
    "PATH_INFO": "/v1/data",
    "QUERY_STRING": "",
    "SCRIPT_NAME": "",
    "SERVER_NAME": "service-b",
    "SERVER_PORT": "8000",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "CONTENT_TYPE": "",
    "wsgi.url_scheme": "http",
    "wsgi.version": (1, 0),
    "wsgi.multithread": True,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
    "HTTP_HOST": "service-b:8000",
    "HTTP_USER_AGENT": "python-requests/2.32.3",
    "HTTP_ACCEPT": "*/*",
    "HTTP_ACCEPT_ENCODING": "gzip, deflate",
    "HTTP_CONNECTION": "keep-alive",
    "HTTP_X_REQUEST_ID": "0f8a3c1e-5b7d-4e2a-9c6f-1d2e3f4a5b6c",
}


class Worker:
    def __init__(self) -> None:
        self.system = None
        self.tokens: dict = {}
        self.n: dict[str, int] = {}
        self.views: dict = {}
        self.profiler = None  # profile_ours.py sets a cProfile.Profile: enabled around timed loops only
        self.tmp = tempfile.mkdtemp(prefix="m2m-bench-worker-")

    # -- set-up --------------------------------------------------------------------------------

    def configure_django(self, system, cache: str) -> None:
        import django
        from django.conf import settings

        if cache.startswith("file:"):
            caches = {
                "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": cache[5:]}
            }
        else:
            caches = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "bench"}}
        settings.configure(
            DEBUG=False,
            SECRET_KEY="benchmark-only-not-secret",
            ALLOWED_HOSTS=["*"],
            USE_TZ=True,
            INSTALLED_APPS=[
                "django.contrib.contenttypes",
                "django.contrib.auth",
                "rest_framework",
                *system.installed_apps(),
            ],
            DATABASES={
                "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(self.tmp, "db.sqlite3")}
            },
            CACHES=caches,
            ROOT_URLCONF=[],
            REST_FRAMEWORK={
                "DEFAULT_AUTHENTICATION_CLASSES": [],
                "DEFAULT_PERMISSION_CLASSES": [],
                "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
                "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
            },
            LOGGING_CONFIG=None,
            **system.settings(),
        )
        django.setup()
        if "drf_m2m_auth" in settings.INSTALLED_APPS:
            from django.core.management import call_command

            call_command("migrate", verbosity=0, interactive=False)

    def cmd_setup(self, msg: dict) -> dict:
        from systems import SYSTEMS

        cfg = dict(msg)
        system = SYSTEMS[cfg["system"]](cfg)
        self.configure_django(system, cfg.get("cache", "locmem"))
        with open(cfg["tokens_file"]) as fh:
            data = json.load(fh)
        self.tokens = data[cfg["alg"]]
        self.shared = {k: v for k, v in data.items() if k not in ("RS256", "ES256")}
        system.setup()
        self.system = system
        self.views["Cs"] = self.views["Cd"] = system.scoped_view
        from systems import noauth_view

        self.views["N"] = noauth_view()
        if cfg["system"] == "ours":
            import ours_extra

            self.ours = ours_extra.OursExtra(self)
        if cfg.get("mode") != "main":
            return {"pid": os.getpid()}
        return self.warm_and_check(cfg)

    def warm_and_check(self, cfg: dict) -> dict:
        from rest_framework.exceptions import APIException

        t = self.tokens
        info: dict = {"pid": os.getpid(), "rejected": {}, "n": {}}
        # Warm every path: JWKS fetched, keys parsed, code paths and caches hot.
        for tok in t["warm"]:
            self.check_ok(self.system.authenticate(self.drf_request(tok)))
        for tok in t["warm_view"]:
            self.check_status([self.views["Cs"](self.wsgi_request(tok))], 200)
        # Every system must refuse every bad token, before any timing.
        for name, tok in t["special"].items():
            if name == "expiring":
                continue
            try:
                result = self.system.authenticate(self.drf_request(tok))
                refused = not (isinstance(result, tuple) and result[0] is not None)
            except APIException:
                refused = True
            resp = self.views["Cs"](self.wsgi_request(tok))
            info["rejected"][name] = bool(refused and resp.status_code in (401, 403))
        self.check_ok(self.system.authenticate(self.drf_request(t["special"]["expiring"])))
        gc.collect()
        gc.freeze()  # what set-up built is never collected: each sample's gc.collect() stays cheap
        return info

    def cmd_calibrate(self, msg: dict) -> dict:
        """Operations per sample for the fixed-token cases; run.py calls one worker at a time."""
        t = self.tokens
        cases = {"A": t["A"], "Cs": t["Cs"], "N": t["Cs"]}
        if self.system.name == "ours":
            cases.update(self.ours.cases())
        for case, tok in cases.items():
            self.n[case] = self.calibrate(case, tok, msg["target_s"])
        return {"n": dict(self.n)}

    def calibrate(self, case: str, tok: str, target_s: float) -> int:
        self.run_case(case, [tok] * 20)
        probe = 50
        while True:
            per_op = self.run_case(case, [tok] * probe, batches=2)
            if per_op * probe > 0.01 or probe >= 5000:
                break
            probe *= 4
        return max(100, min(5000, int(target_s / max(per_op, 1e-9))))

    # -- requests ------------------------------------------------------------------------------

    def wsgi_request(self, tok: str):
        from django.core.handlers.wsgi import WSGIRequest
        from django.test.client import FakePayload

        environ = dict(BASE_ENVIRON)
        environ["wsgi.input"] = FakePayload(b"")
        environ["wsgi.errors"] = sys.stderr
        environ["HTTP_AUTHORIZATION"] = "Bearer " + tok
        return WSGIRequest(environ)

    def drf_request(self, tok: str):
        from rest_framework.request import Request

        return Request(self.wsgi_request(tok))

    def check_ok(self, result) -> None:
        if not isinstance(result, tuple) or self.system.client_id(result) != CLIENT_ID:
            raise AssertionError(f"{self.system.name}: token not accepted as {CLIENT_ID}: {result!r}")

    def check_status(self, responses, status: int) -> None:
        bad = [r.status_code for r in responses if r.status_code != status]
        if bad:
            raise AssertionError(f"{self.system.name}: expected {status}, got {bad[:5]}")

    # -- timing --------------------------------------------------------------------------------

    def run_case(self, case: str, tokens: list[str], batches: int = 1) -> float:
        """CPU seconds per operation over ``tokens``: the fastest of ``batches`` equal slices."""
        return self.run_group({case: tokens}, batches)[0][case]

    def run_group(self, group: dict[str, list[str]], batches: int = 1) -> tuple[dict, dict]:
        """Seconds per operation for each case of ``group``, their slices taken in turn.

        Returns (CPU time of this thread, wall time), each the fastest slice. CPU time is what the
        tables use: on a machine shared with other work, wall time also counts the moments the
        scheduler gave the core to someone else. Requests are built before the clock starts. The
        fastest slice is the least disturbed one (timeit's reasoning); every system is measured the
        same way, and run.py divides by the floor's value from the same round. Cases compared with
        each other (a request and the no-auth request; D's with and without checks) share a group,
        so their slices alternate and see the same machine.
        """
        plans = {}
        for case, tokens in group.items():
            if case in ("A", "B", "AS") or case.startswith("DA"):
                fn = self.system.authenticate if case in ("A", "B", "AS") else self.ours.authenticator(case)
                reqs = [self.drf_request(tok) for tok in tokens]
                timed = self._time_authenticate
            else:
                fn = self.views[case] if case in self.views else self.ours.view(case)
                reqs = [self.wsgi_request(tok) for tok in tokens]
                timed = self._time_view
            size = max(1, len(reqs) // batches)
            plans[case] = (timed, fn, [reqs[i : i + size] for i in range(0, size * batches, size)])
        gc.collect()
        best = {case: float("inf") for case in group}
        best_wall = dict(best)
        for i in range(batches):
            for case, (timed, fn, slices) in plans.items():
                cpu, wall = timed(fn, slices[i])
                best[case] = min(best[case], cpu)
                best_wall[case] = min(best_wall[case], wall)
        return best, best_wall

    def _time_authenticate(self, fn, reqs) -> float:
        cpu, perf = time.thread_time, time.perf_counter
        results = []
        append = results.append
        gc.disable()
        prof = self.profiler
        try:
            if prof:
                prof.enable()
            c0, t0 = cpu(), perf()
            for r in reqs:
                append(fn(r))
            t1, c1 = perf(), cpu()
        finally:
            if prof:
                prof.disable()
            gc.enable()
        for res in results:
            self.check_ok(res)
        return (c1 - c0) / len(reqs), (t1 - t0) / len(reqs)

    def _time_view(self, view, reqs) -> float:
        cpu, perf = time.thread_time, time.perf_counter
        codes = []
        append = codes.append
        gc.disable()
        prof = self.profiler
        try:
            if prof:
                prof.enable()
            c0, t0 = cpu(), perf()
            for r in reqs:
                resp = view(r)
                resp.render()
                append(resp.status_code)
            t1, c1 = perf(), cpu()
        finally:
            if prof:
                prof.disable()
            gc.enable()
        if any(c != 200 for c in codes):
            raise AssertionError(f"{self.system.name}: statuses {sorted(set(codes))}")
        return (c1 - c0) / len(reqs), (t1 - t0) / len(reqs)

    def cmd_sample(self, msg: dict) -> dict:
        """Slice ``i`` of ``k`` of one sample of each case in ``msg["cases"]``, round ``msg["round"]``.

        run.py takes the slices of a sample from every worker in turn, so the floor's slice and
        another system's slice are seconds apart at most; it keeps the fastest slice of each.
        """
        rnd, t = msg["round"], self.tokens
        i, k = msg.get("slice", (0, 1))
        group = {}
        for case in msg["cases"]:
            if case in ("B", "Cd"):
                pool = t[case][rnd]
                size = len(pool) // k
                group[case] = pool[i * size : (i + 1) * size]
            else:
                tok = t["Cs"] if case in ("Cs", "N", "CA", "CZ") else t[case] if case in ("A", "AS") else t["D"]
                group[case] = [tok] * max(10, self.n[case] // k)
        cpu, wall = self.run_group(group, msg.get("batches", 1))
        return {"s_per_op": cpu, "wall_s_per_op": wall}

    def cmd_post_check(self, msg: dict) -> dict:
        """After the run: the token that expired meanwhile must be refused (cached or not)."""
        from rest_framework.exceptions import APIException

        tok = self.tokens["special"]["expiring"]
        try:
            result = self.system.authenticate(self.drf_request(tok))
            refused = not isinstance(result, tuple)
        except APIException:
            refused = True
        out = {"expired_after_cache_refused": refused}
        if self.system.name == "ours":
            out.update(self.ours.post_check())
        return out

    # -- case E: JWKS behaviour ---------------------------------------------------------------

    def authenticate_raw(self, tok: str) -> bool:
        from rest_framework.exceptions import APIException

        try:
            result = self.system.authenticate(self.drf_request(tok))
        except APIException:
            return False
        return isinstance(result, tuple)

    def cmd_e_auth(self, msg: dict) -> dict:
        """Authenticate tokens one after another; with ``threads`` > 1, all threads at once."""
        pool = self.shared[msg["pool"]] if msg["pool"] in self.shared else self.tokens[msg["pool"]]
        tokens = pool[msg.get("start", 0) : msg.get("start", 0) + msg["count"]]
        threads = msg.get("threads", 1)
        if threads == 1:
            t0 = time.perf_counter()
            accepted = sum(self.authenticate_raw(tok) for tok in tokens)
            return {"accepted": accepted, "refused": len(tokens) - accepted, "elapsed_s": time.perf_counter() - t0}
        barrier = threading.Barrier(threads)
        results: list = [None] * threads

        def run(i: int) -> None:
            barrier.wait()
            results[i] = self.authenticate_raw(tokens[i % len(tokens)])

        t0 = time.perf_counter()
        ths = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for th in ths:
            th.start()
        for th in ths:
            th.join(60)
        accepted = sum(1 for r in results if r)
        return {"accepted": accepted, "refused": threads - accepted, "elapsed_s": time.perf_counter() - t0}


def main() -> None:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    worker = Worker()
    timer: dict = {}

    def watchdog():
        while True:
            time.sleep(30)
            if time.monotonic() - timer["last"] > IDLE_TIMEOUT:
                os._exit(3)

    timer["last"] = time.monotonic()
    threading.Thread(target=watchdog, daemon=True).start()
    for line in sys.stdin:
        timer["last"] = time.monotonic()
        msg = json.loads(line)
        cmd = msg.pop("cmd")
        if cmd == "quit":
            proto.write(json.dumps({"ok": True}) + "\n")
            break
        try:
            reply = {"ok": True, **getattr(worker, "cmd_" + cmd)(msg)}
        except Exception:  # reported to the coordinator, which stops the run
            reply = {"ok": False, "error": traceback.format_exc()}
        proto.write(json.dumps(reply) + "\n")
        timer["last"] = time.monotonic()
    proto.flush()
    shutil.rmtree(worker.tmp, ignore_errors=True)
    os._exit(0)  # skip interpreter teardown (thread pools, caches): nothing to save


if __name__ == "__main__":
    main()
