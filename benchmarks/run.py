"""Side-by-side cost of authenticating M2M JWTs in DRF: drf_m2m_auth, the floor, and its peers.

    python benchmarks/run.py [--quick] [--json benchmarks/results/latest.json]

Each (system, algorithm) runs in its own worker process (worker.py). A JWKS server on 127.0.0.1
serves the keys; every worker fetches and caches them before timing. Rounds are interleaved: in
each round every worker takes one sample of every case, in shuffled order, one worker at a time.
A system's result in a round is divided by the floor's result in the same round, and the table
shows the median of those ratios with their spread, so drift of a shared machine cancels.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import common  # noqa: E402
from jwks_server import JWKSServer  # noqa: E402
from report import render_rst, render_text, summarize  # noqa: E402

ALL_SYSTEMS = ["floor", "ours", "pyjwt", "simplejwt", "authlib", "joserfc"]
BASELINE_SRC: dict[str, str] = {}  # "baseline" -> the extracted tree of --baseline REV
E_SYSTEMS = ["ours", "pyjwt", "simplejwt", "authlib"]  # the ones that fetch a JWKS themselves
# Sample groups: cases in one group are compared with each other and alternate slice by slice.
GROUPS = {"A": ["A"], "B": ["B"], "C": ["Cs", "N"], "Cd": ["Cd"]}
OURS_GROUPS = {**GROUPS, "A": ["A", "AS"], "C": ["Cs", "N", "CA", "CZ"], "D": ["DF", "DB"], "DA": ["DAF", "DAB"]}
SLICES = 5  # per sample; each slice visits every worker in turn, the fastest slice is kept

PROFILES = {
    #          rounds, distinct tokens per round for B, for Cd, seconds per fixed-token sample
    "full": {"rounds": 25, "n_b": 250, "n_cd": 120, "target_s": 0.1, "flood": 1000},
    "quick": {"rounds": 5, "n_b": 100, "n_cd": 50, "target_s": 0.03, "flood": 1000},
}


class WorkerError(RuntimeError):
    pass


class WorkerProc:
    """A worker process and its JSON-lines pipe."""

    def __init__(self, label: str, log_dir: str):
        self.label = label
        self.log_path = os.path.join(log_dir, label.replace("/", "_") + ".log")
        self.log = open(self.log_path, "w")
        env = dict(os.environ)
        src = BASELINE_SRC.get(label.split("/")[0])
        if src:
            env["M2M_BENCH_PACKAGE_SRC"] = src
        env["PYTHONPATH"] = os.pathsep.join(p for p in (HERE, REPO, env.get("PYTHONPATH")) if p)
        env.setdefault("PYTHONHASHSEED", "0")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "worker.py")],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
        )

    def send(self, cmd: str, **kw) -> None:
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
        self.proc.stdin.flush()

    def recv(self, timeout: float = 600) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise WorkerError(f"{self.label}: no reply (exit code {self.proc.poll()})\n{self.log_tail()}")
        reply = json.loads(line)
        if not reply.pop("ok"):
            raise WorkerError(f"{self.label}: {reply.get('error')}\n{self.log_tail()}")
        return reply

    def call(self, cmd: str, timeout: float = 600, **kw) -> dict:
        self.send(cmd, **kw)
        return self.recv(timeout)

    def log_tail(self, lines: int = 30) -> str:
        self.log.flush()
        try:
            with open(self.log_path) as fh:
                return "".join(fh.readlines()[-lines:])
        except OSError:
            return ""

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.send("quit")
                self.proc.wait(10)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- tokens -------------------------------------------------------------------------------------


def mint_all(keys: dict, issuer: str, prof: dict, path: str) -> None:
    rounds, n_b, n_cd = prof["rounds"], prof["n_b"], prof["n_cd"]
    per_alg = 3 + 30 + 10 + rounds * (n_b + n_cd)
    jobs = []
    for alg in common.ALGS:
        chunk = 200
        left = per_alg
        while left > 0:
            jobs.append((keys[alg], alg, common.KID[alg], issuer, min(chunk, left)))
            left -= chunk
    with Pool(min(2, os.cpu_count() or 1)) as pool:
        batches = pool.map(common.mint_batch, jobs)
    data: dict = {}
    for alg in common.ALGS:
        toks = [t for job, batch in zip(jobs, batches, strict=True) if job[1] == alg for t in batch]
        pos = 0

        def take(n: int, toks=toks) -> list[str]:
            nonlocal pos
            pos += n
            return toks[pos - n : pos]

        d = {"A": take(1)[0], "Cs": take(1)[0], "D": take(1)[0], "warm": take(30), "warm_view": take(10)}
        d["B"] = [take(n_b) for _ in range(rounds)]
        d["Cd"] = [take(n_cd) for _ in range(rounds)]
        d["special"] = common.special_tokens(keys, alg, issuer)
        d.update(common.status_tokens(keys, alg, issuer))
        data[alg] = d
    data["flood"] = common.unknown_kid_tokens(keys, issuer, prof["flood"])
    data["cold"] = data["RS256"]["warm"][:16]
    with open(path, "w") as fh:
        json.dump(data, fh)


# -- the main phase: cases A-D -----------------------------------------------------------------


def start_workers(systems, server, tokens_file, prof, log_dir, ns="main") -> dict:
    workers = {}
    for alg in common.ALGS:
        for name in systems:
            label = f"{name}/{alg}"
            w = WorkerProc(label, log_dir)
            workers[(name, alg)] = w
            w.send(
                "setup",
                system=name,
                alg=alg,
                issuer=server.issuer,
                jwks_url=server.jwks_url(ns),
                algorithms=list(common.ALGS),
                tokens_file=tokens_file,
                target_s=prof["target_s"],
                mode="main",
                cache="locmem",
            )
    infos = {}
    for key, w in workers.items():
        infos[key] = w.recv()
    for key, w in workers.items():  # one at a time: calibrating on a quiet machine
        infos[key].update(w.call("calibrate", target_s=prof["target_s"]))
        log(f"ready {w.label}: ops per sample {infos[key]['n']}")
    return workers, infos


def run_rounds(workers: dict, prof: dict, seed: int) -> dict:
    """Every round, every group: SLICES passes, each pass one slice from every worker in turn.

    The floor's slice and another system's slice of the same case are taken seconds apart at
    most, so the ratio of their fastest slices sees the same machine.
    """
    rng = random.Random(seed)
    samples: dict = {f"{s}/{a}": {} for (s, a) in workers}
    wall: dict = {f"{s}/{a}": {} for (s, a) in workers}
    names = list(OURS_GROUPS)
    for rnd in range(prof["rounds"]):
        t0 = time.monotonic()
        for name in rng.sample(names, len(names)):
            best: dict = {}
            for i in range(SLICES):
                order = [k for k in workers if name in (OURS_GROUPS if k[0] == "ours" else GROUPS)]
                for key in rng.sample(order, len(order)):
                    cases = (OURS_GROUPS if key[0] == "ours" else GROUPS)[name]
                    # Paired cases compare two close numbers: they alternate twice within a slice too.
                    r = workers[key].call(
                        "sample", cases=cases, round=rnd, slice=[i, SLICES], batches=2 if len(cases) > 1 else 1
                    )
                    for case, value in r["s_per_op"].items():
                        cpu, wl = best.get((key, case), (float("inf"), float("inf")))
                        best[(key, case)] = (min(cpu, value), min(wl, r["wall_s_per_op"][case]))
            for (key, case), (cpu, wl) in best.items():
                label = workers[key].label
                samples[label].setdefault(case, []).append(cpu)
                wall[label].setdefault(case, []).append(wl)
        log(f"round {rnd + 1}/{prof['rounds']} in {time.monotonic() - t0:.1f}s")
    return samples, wall


# -- case E: JWKS fetches ------------------------------------------------------------------------


def run_e(systems, server, tokens_file, prof, log_dir, tmp) -> dict:
    out: dict = {}
    flood = prof["flood"]
    for name in [s for s in E_SYSTEMS if s in systems]:
        res: dict = {}
        common_kw = {
            "system": name,
            "alg": "RS256",
            "issuer": server.issuer,
            "algorithms": list(common.ALGS),
            "tokens_file": tokens_file,
            "target_s": prof["target_s"],
            "mode": "e",
        }

        # E1: one process, keys cached, then `flood` tokens with kids never published.
        ns = f"e1-{name}"
        w = WorkerProc(f"E1-{name}", log_dir)
        try:
            w.call("setup", jwks_url=server.jwks_url(ns), cache="locmem", **common_kw)
            assert w.call("e_auth", pool="warm", count=1)["accepted"] == 1
            before = server.count(ns)
            r = w.call("e_auth", pool="flood", count=flood)
            res["flood_1proc"] = {
                "fetches": server.count(ns) - before,
                "tokens": flood,
                "elapsed_s": r["elapsed_s"],
                "accepted": r["accepted"],
            }
        finally:
            w.close()

        # E2: four processes sharing one cache, flooded at once (flood/4 tokens each).
        ns = f"e2-{name}"
        cache_dir = tempfile.mkdtemp(dir=tmp, prefix=f"cache-e2-{name}-")
        ws = [WorkerProc(f"E2-{name}-{i}", log_dir) for i in range(4)]
        try:
            for w in ws:
                w.send("setup", jwks_url=server.jwks_url(ns), cache="file:" + cache_dir, **common_kw)
            for w in ws:
                w.recv()
            for w in ws:
                assert w.call("e_auth", pool="warm", start=1, count=1)["accepted"] == 1
            before = server.count(ns)
            part = flood // 4
            for i, w in enumerate(ws):
                w.send("e_auth", pool="flood", start=i * part, count=part)
            rs = [w.recv() for w in ws]
            res["flood_4proc_shared_cache"] = {
                "fetches": server.count(ns) - before,
                "tokens": part * 4,
                "elapsed_s": max(r["elapsed_s"] for r in rs),
                "accepted": sum(r["accepted"] for r in rs),
            }
        finally:
            for w in ws:
                w.close()

        # E3: cold start, 16 threads at once; the issuer answers in 100 ms.
        ns = f"e3-{name}"
        server.delays[ns] = 0.1
        w = WorkerProc(f"E3-{name}", log_dir)
        try:
            w.call("setup", jwks_url=server.jwks_url(ns), cache="locmem", **common_kw)
            r = w.call("e_auth", pool="cold", count=16, threads=16)
            res["cold_16_threads"] = {
                "fetches": server.count(ns),
                "accepted": r["accepted"],
                "elapsed_s": r["elapsed_s"],
            }
        finally:
            w.close()

        # E4: cold start, 4 processes sharing one cache, one request each at once.
        ns = f"e4-{name}"
        server.delays[ns] = 0.1
        cache_dir = tempfile.mkdtemp(dir=tmp, prefix=f"cache-e4-{name}-")
        ws = [WorkerProc(f"E4-{name}-{i}", log_dir) for i in range(4)]
        try:
            for w in ws:
                w.send("setup", jwks_url=server.jwks_url(ns), cache="file:" + cache_dir, **common_kw)
            for w in ws:
                w.recv()
            for i, w in enumerate(ws):
                w.send("e_auth", pool="cold", start=i, count=1)
            rs = [w.recv() for w in ws]
            res["cold_4_processes"] = {
                "fetches": server.count(ns),
                "accepted": sum(r["accepted"] for r in rs),
                "elapsed_s": max(r["elapsed_s"] for r in rs),
            }
        finally:
            for w in ws:
                w.close()
        out[name] = res
        log(f"E {name}: " + ", ".join(f"{k}={v['fetches']}" for k, v in res.items()))
    return out


# -- main -----------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run (~1-2 min): fewer rounds and tokens")
    ap.add_argument(
        "--json",
        default=os.path.join(HERE, "results", "latest.json"),
        help="where to write the machine-readable results (default: %(default)s)",
    )
    ap.add_argument("--rst", default=None, help="also write the tables as reStructuredText here")
    ap.add_argument(
        "--systems",
        default=",".join(ALL_SYSTEMS),
        help="comma-separated subset of: " + ", ".join(ALL_SYSTEMS) + " (floor is always run)",
    )
    ap.add_argument("--rounds", type=int, default=None, help="override the number of interleaved rounds")
    ap.add_argument("--no-e", action="store_true", help="skip case E (JWKS fetch behaviour)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument(
        "--baseline",
        metavar="REV",
        default=None,
        help="also run drf_m2m_auth as it was at git revision REV, as the system 'baseline' (before/after)",
    )
    args = ap.parse_args(argv)

    prof = dict(PROFILES["quick" if args.quick else "full"])
    if args.rounds:
        prof["rounds"] = args.rounds
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(ALL_SYSTEMS)
    if unknown:
        ap.error(f"unknown systems: {', '.join(sorted(unknown))}")
    systems = ["floor"] + [s for s in systems if s != "floor"]

    started = time.time()
    tmp = tempfile.mkdtemp(prefix="m2m-bench-")
    if args.baseline:
        BASELINE_SRC["baseline"] = extract_revision(args.baseline, os.path.join(tmp, "baseline"))
        systems.insert(systems.index("ours") + 1 if "ours" in systems else 1, "baseline")
    log_dir = os.path.join(tmp, "logs")
    os.makedirs(log_dir)
    log(f"profile {'quick' if args.quick else 'full'}: {prof}; logs in {log_dir}")
    keys = common.generate_keys()
    server = JWKSServer(common.jwks_document(keys)).start()
    workers: dict = {}
    ok = False
    try:
        tokens_file = os.path.join(tmp, "tokens.json")
        t0 = time.monotonic()
        mint_all(keys, server.issuer, prof, tokens_file)
        server.status_list_body = common.status_list_token(keys, server.issuer).encode()
        expiring_at = time.time() + common.EXPIRING_LIFETIME
        log(f"minted tokens in {time.monotonic() - t0:.1f}s")
        workers, infos = start_workers(systems, server, tokens_file, prof, log_dir)
        samples, wall = run_rounds(workers, prof, args.seed)
        wait = expiring_at + 1 - time.time()
        if wait > 0:
            log(f"waiting {wait:.0f}s for the 'expiring' token to expire before the post-checks")
            time.sleep(wait)
        post = {w.label: w.call("post_check") for w in workers.values()}
        for w in workers.values():
            w.close()
        workers = {}
        e = {} if args.no_e else run_e(systems, server, tokens_file, prof, log_dir, tmp)
        result = {
            "command": " ".join(["python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]),
            "machine": common.machine_info(),
            "versions": common.package_versions(),
            "revision": common.git_revision(REPO),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "duration_s": round(time.time() - started, 1),
            "profile": prof,
            "systems": systems,
            "setup": {f"{s}/{a}": info for (s, a), info in infos.items()},
            "post_checks": post,
            "samples_s_per_op": samples,  # CPU time of the worker thread, per operation
            "samples_wall_s_per_op": wall,
            "e": e,
            "ours_settings": {"JWKS_REFRESH_COOLDOWN": _ours_cooldown()},
        }
        result["summary"] = summarize(result)
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1, sort_keys=True)
        print(render_text(result))
        if args.rst:
            with open(args.rst, "w") as fh:
                fh.write(render_rst(result))
        log(f"wrote {args.json} ({result['duration_s']} s)")
        ok = True
    finally:
        for w in workers.values():
            w.close()
        server.stop()
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"kept worker logs in {log_dir}")
    return 0


def extract_revision(rev: str, dest: str) -> str:
    """drf_m2m_auth as it was at ``rev``, extracted into ``dest`` (importable from there)."""
    os.makedirs(dest)
    archive = subprocess.run(
        ["git", "-C", REPO, "archive", "--format=tar", rev, "drf_m2m_auth"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    log(f"baseline: drf_m2m_auth at {rev} extracted to {dest}")
    return dest


def _ours_cooldown():
    try:
        sys.path.insert(0, REPO)
        from drf_m2m_auth.conf import DEFAULTS

        return DEFAULTS.get("JWKS_REFRESH_COOLDOWN")
    except Exception:  # ours not importable: reported as unknown
        return None


if __name__ == "__main__":
    sys.exit(main())
