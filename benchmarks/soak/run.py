"""The soak run: service-b under Locust load while its dependencies fail on a schedule.

    python benchmarks/soak/run.py --short        # about 90 s of load; what tests/test_soak.py runs
    python benchmarks/soak/run.py --long         # 10 minutes, 2,000 clients, a report with a plot
    python benchmarks/soak/run.py --system pyjwt # a peer as service-b (pyjwt, simplejwt, authlib)

Topology, all on 127.0.0.1 with free ports and temporary directories: the local issuer
(testproject's issuer app, its own gunicorn process and SQLite file), service-b (gunicorn, 4 sync
workers, behind nginx), PostgreSQL (grants, revocation), Redis (shared cache), and the control
plane (``manage.py m2m_revoke`` / ``m2m_grant`` with service-b's settings). Faults (see SCHEDULE)
are stamped into a timeline; the locustfile writes every request to a history; ``checker.py``
replays the history against the truth. Exit status: 0 all bounds held, 1 a bound was violated,
77 a real component (postgres, redis-server, nginx) is not installed.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from string import Template

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(REPO) not in sys.path:  # run as a script
    sys.path.insert(0, str(REPO))

from benchmarks.common import AUDIENCE  # noqa: E402 -- the benchmarks' audience: benchmarks/systems.py checks it
from benchmarks.soak import report  # noqa: E402
from benchmarks.soak.checker import check  # noqa: E402
from tests.nginx_support.harness import find_nginx  # noqa: E402
from tests.realservices.servers import (  # noqa: E402
    PostgresServer,
    RedisServer,
    free_port,
    postgres_bindir,
    stop_process,
    wait_for,
)

SKIP = 77
SCOPE = "read:data"  # the scope benchmarks/systems.py's views (and ours in service_urls.py) require
ISSUER_SETTINGS = "testproject.api.service_settings"
SERVICE_SETTINGS = "benchmarks.soak.service_settings"
PEER_SETTINGS = "benchmarks.soak.peer_settings"
SYSTEMS = ("ours", "pyjwt", "simplejwt", "authlib")
# What a peer does not have (no client registry, grants, revocation or status list): these faults
# and token kinds are left out of its run, and its report says "n/a" for them.
REVOCATION_FAULTS = frozenset({"control_plane", "status_list_revoke"})
WORKERS = 4
# The propagation settings of the run (REVOCATION_DB_CHECK_INTERVAL = 5 s). The JWKS TTL is
# short so that the 15 s JWKS outage really makes every worker refresh, fail and serve stale keys.
SERVICE_M2M = {
    "M2M_REVOCATION_CHECK_INTERVAL": "1.0",
    "M2M_REVOCATION_DB_CHECK_INTERVAL": "5.0",
    "M2M_JWKS_MIN_TTL": "2",
    "M2M_JWKS_MAX_TTL": "5",
}
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Profile:
    clients: int  # registered clients with a valid token (Zipf-chosen)
    invalid_each: int  # tokens per invalid kind (expired, wrong_aud, tampered, revoked_client)
    duration: float  # seconds of load
    users: int
    rate: float  # requests per second per user
    spread: float  # the fault schedule's offsets are multiplied by this


SHORT = Profile(clients=200, invalid_each=5, duration=84, users=12, rate=10, spread=1.0)
LONG = Profile(clients=2000, invalid_each=25, duration=600, users=20, rate=10, spread=7.0)

# (offset in seconds from the start of the load, fault). Fault durations are fixed.
SCHEDULE = [
    (5, "rotation"),
    (9, "control_plane"),  # two manage.py commands, a few seconds each
    (21, "jwks_down"),  # 15 s
    (40, "emergency_rotation"),
    (45, "redis_down"),  # 10 s, with a revocation 2 s into it
    (60, "postgres_restart"),
    # One token revoked at the issuer (``issuer_token_status JTI --revoke``): refused within the
    # status list's ttl + 1 s (6 s here), while the issuer is up for the whole window.
    (61, "status_list_revoke"),
    (68, "worker_kill"),
]
JWKS_DOWN_S, REDIS_DOWN_S, REDIS_CHANGE_AT = 15.0, 10.0, 2.0


def _own_group(user=None):
    """preexec_fn: own process group, optional change of user, SIGTERM when the harness dies."""

    def preexec():
        os.setsid()
        if user is not None:
            os.setgid(user.pw_gid)
            os.initgroups(user.pw_name, user.pw_gid)
            os.setuid(user.pw_uid)
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:
            pass

    return preexec


def _spawn(args, env, log: Path, user=None, **kwargs) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            args,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_own_group(user),
            cwd=str(REPO),
            **kwargs,
        )


def _http_ok(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TESTPROJECT_", "DJANGO_", "M2M_", "SOAK_"))}
    env.update({"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)})
    env.update(extra)
    return env


def _no_control_socket() -> list[str]:
    """Recent gunicorn releases open a control socket at one fixed path in $HOME, shared by every master on the
    machine (the issuer's, service-b's, other runs'): each run's masters do without it."""
    from gunicorn import config

    return ["--no-control-socket"] if any(s.name == "control_socket_disable" for s in config.KNOWN_SETTINGS) else []


class Gunicorn:
    """One gunicorn master (and its workers) on a fixed 127.0.0.1 port; restartable on that port."""

    def __init__(self, name: str, env: dict, workdir: Path, workers: int, threads: int = 1):
        self.name, self.env, self.workdir = name, env, workdir
        self.port = free_port()
        self.workers, self.threads = workers, threads
        self.proc: subprocess.Popen | None = None

    def start(self, ready_path: str) -> Gunicorn:
        args = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers)]
        args += ["--worker-class", "gthread", "--threads", str(self.threads)] if self.threads > 1 else []
        args += ["--timeout", "30", "--graceful-timeout", "3", *_no_control_socket()]
        args += ["--chdir", str(REPO), "benchmarks.soak.wsgi:application"]
        log = self.workdir / f"{self.name}.log"
        self.proc = _spawn(args, self.env, log)
        wait_for(lambda: _http_ok(f"http://127.0.0.1:{self.port}{ready_path}"), 60, self.name, self.proc, log)
        return self

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def worker_pids(self) -> list[int]:
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def stop(self) -> None:
        stop_process(self.proc)


def process_sample(pid: int) -> dict:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rss_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
        return {"pid": pid, "rss_mb": round(rss_kb / 1024, 1), "fds": len(os.listdir(f"/proc/{pid}/fd"))}
    except (OSError, StopIteration, ValueError):
        return {"pid": pid, "rss_mb": None, "fds": None}


class IssuerOps:
    """benchmarks/soak/issuer_ops.py as a long-lived child: mint and rotate without a Django start-up."""

    def __init__(self, env: dict, workdir: Path, plan: list, tokens: Path):
        self.plan, self.tokens, self.generation = plan, tokens, 0
        self.log = open(workdir / "issuer-ops.log", "ab")  # noqa: SIM115 -- closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "issuer_ops.py")],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            preexec_fn=_own_group(),
            cwd=str(REPO),
        )
        self.ready = self._answer()

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("issuer_ops exited; see issuer-ops.log")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"issuer_ops: {answer['error']}")
        return answer

    def send(self, op: str, **extra) -> dict:
        command = {"op": op, "plan": self.plan, "out": str(self.tokens), "generation": self.generation}
        command.update({"audience": AUDIENCE, "scope": SCOPE, **extra})
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        answer = self._answer()
        answer["generation"] = self.generation
        self.generation += 1
        return answer

    def ask(self, op: str, **extra) -> dict:
        """An operation that mints nothing (the token generation does not change)."""
        self.proc.stdin.write(json.dumps({"op": op, "out": str(self.tokens), **extra}) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        else:
            self.proc.stdin.close()
        self.proc.stdout.close()
        self.log.close()


def restart_postgres(pg: PostgresServer) -> None:
    """Fast shutdown (SIGINT: sessions cut) and the same command line again on the same socket."""
    argv = Path(f"/proc/{pg.proc.pid}/cmdline").read_bytes().split(b"\0")[:-1]
    pg.proc.send_signal(signal.SIGINT)
    pg.proc.wait(30)
    pg.proc = _spawn([a.decode() for a in argv], None, pg.log, user=pg.user, close_fds=True)

    def accepts() -> bool:
        try:
            pg.connect("postgres").close()
            return True
        except Exception:
            return False

    wait_for(accepts, 30, "postgres (restarted)", pg.proc, pg.log)


class Soak:
    def __init__(self, profile: Profile, out: Path, service_settings: str, nginx_bin: str, system: str = "ours"):
        self.profile, self.out, self.service_settings, self.nginx_bin = profile, out, service_settings, nginx_bin
        self.system = system
        self.ours = system == "ours"
        self.tmp = Path(tempfile.mkdtemp(prefix="m2m-soak-"))
        self.timeline: dict = {"system": system, "faults": [], "changes": [], "generations": [], "workers": {}}
        self.started: list = []  # things to stop, in reverse order
        self.load_start = 0.0
        self.issuer_port = free_port()
        self.issuer_url = f"http://127.0.0.1:{self.issuer_port}/issuer/"
        self.issuer_env = base_env(
            DJANGO_SETTINGS_MODULE=ISSUER_SETTINGS,
            TESTPROJECT_ROLE="issuer",
            TESTPROJECT_SQLITE=str(self.tmp / "issuer.sqlite3"),
            TESTPROJECT_CACHE_DIR=str(self.tmp / "issuer-cache"),
            M2M_ISSUER=self.issuer_url,
            M2M_AUDIENCE=AUDIENCE,
        )

    # --- the topology ------------------------------------------------------------------------------

    def plan(self) -> tuple[dict, list]:
        """(service-b's clients, the token plan). A peer has no client registry: no revoked or watched clients."""
        p = self.profile
        valid = [f"client-{i:04d}" for i in range(p.clients)]
        inactive = [f"inactive-{i:02d}" for i in range(p.invalid_each)] if self.ours else []
        service = {
            "granted": valid + ["watch-revoke", "watch-outage", "watch-status"],
            "ungranted": ["watch-grant"],
            "inactive": inactive,
        }
        tokens = [[c, "valid"] for c in valid]
        for kind in ("expired", "wrong_aud", "tampered"):
            tokens += [[valid[-1 - i], kind] for i in range(p.invalid_each)]
        tokens += [[c, "revoked_client"] for c in inactive]
        if self.ours:
            tokens += [["watch-revoke", "watch_revoke"], ["watch-outage", "watch_revoke"]]
            tokens += [["watch-grant", "watch_grant"], ["watch-status", "watch_status"]]
        return service, tokens

    def start(self) -> None:
        # The issuer's migrations run while PostgreSQL starts. Servers are spawned by this (main)
        # thread only: PR_SET_PDEATHSIG fires when the spawning *thread* exits. The issuer is up
        # before service-b: a peer reads the JWKS when its workers start.
        with ThreadPoolExecutor(1) as pool:
            migrated = pool.submit(self._manage, self.issuer_env, "migrate", "--verbosity", "0")
            self.pg = PostgresServer()
            self.started.append(self.pg)
            self.pg.start()
            self.redis = RedisServer()
            self.started.append(self.redis)
            self.redis.start()
            migrated.result()
        self.issuer = Gunicorn("issuer", self.issuer_env, self.tmp, workers=1, threads=4)
        self.issuer.port = self.issuer_port
        self.started.append(self.issuer)
        self.issuer.start("/issuer/.well-known/jwks.json")
        self._start_service()
        self.tokens = self.tmp / "tokens.json"
        self.ops = IssuerOps(self.issuer_env, self.tmp, self.token_plan, self.tokens)
        self.started.append(self.ops)
        settings = self.timeline["settings"]
        if self.ours:  # the list's ttl as service-b uses it: the issuer's, clamped by service-b's settings
            list_ttl = float(self.ops.ready["list_ttl"])
            settings["STATUS_LIST_ISSUER_TTL"] = list_ttl
            settings["STATUS_LIST_TTL"] = min(
                max(list_ttl, settings["STATUS_LIST_MIN_TTL"]), settings["STATUS_LIST_MAX_TTL"]
            )
        self.timeline["generations"].append({**self.ops.send("mint"), "emergency": False})

    def _start_service(self) -> None:
        db = self.pg.create_database("m2m_soak")
        self.service_env = base_env(
            DJANGO_SETTINGS_MODULE=self.service_settings,
            SOAK_SYSTEM=self.system,
            TESTPROJECT_REDIS_URL=self.redis.url,
            M2M_ISSUER=self.issuer_url,
            M2M_AUDIENCE=AUDIENCE,
            M2M_JWKS_URL=self.issuer_url + ".well-known/jwks.json",
            **self.pg.env(db),
            **SERVICE_M2M,
        )
        service_plan, self.token_plan = self.plan()
        plan_file = self.tmp / "service-plan.json"
        plan_file.write_text(json.dumps(service_plan))
        if not self.ours:  # a peer reads no database: nothing to seed, no propagation settings
            self.timeline["settings"] = {"system": self.system}
        else:
            self._seed(plan_file)
        self.service = Gunicorn("service-b", self.service_env, self.tmp, workers=WORKERS)
        self.started.append(self.service)
        self.service.start("/healthz")
        self.nginx_port = self._start_nginx()

    def _seed(self, plan_file: Path) -> None:
        seeded = subprocess.run(
            [sys.executable, str(HERE / "seed_service.py"), str(plan_file)],
            env=self.service_env,
            capture_output=True,
            text=True,
            timeout=180,
            cwd=str(REPO),
        )
        if seeded.returncode:
            raise RuntimeError(f"seeding service-b failed:\n{seeded.stdout}\n{seeded.stderr}")
        self.timeline["settings"] = json.loads(seeded.stdout.strip().splitlines()[-1])

    def _start_nginx(self) -> int:
        nginx_dir = self.tmp / "nginx"
        for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (nginx_dir / name).mkdir(parents=True, exist_ok=True)
        port = free_port()
        conf = Template((HERE / "nginx.conf.template").read_text()).substitute(
            tmp=str(nginx_dir),
            port=port,
            backend_port=self.service.port,
            user_line="user root;" if os.geteuid() == 0 else "",
        )
        (nginx_dir / "nginx.conf").write_text(conf)
        args = [
            self.nginx_bin,
            "-p",
            str(nginx_dir),
            "-e",
            str(nginx_dir / "error.log"),
            "-c",
            str(nginx_dir / "nginx.conf"),
        ]
        self.nginx = _spawn([*args, "-g", "daemon off;"], None, nginx_dir / "stderr.log")
        self.started.append(_Stoppable(lambda: stop_process(self.nginx)))
        wait_for(lambda: _http_ok(f"http://127.0.0.1:{port}/healthz"), 20, "nginx", self.nginx, nginx_dir / "error.log")
        return port

    def _manage(self, env: dict, *args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, str(REPO / "testproject" / "manage.py"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=str(REPO),
        )
        if done.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def stop(self) -> None:
        for thing in reversed(self.started):
            try:
                thing.stop()
            except Exception as exc:  # keep stopping the others
                print(f"stopping {thing!r}: {exc}", file=sys.stderr)
        self.started.clear()

    # --- faults --------------------------------------------------------------------------------------

    def _fault(self, name: str, start: float, **extra) -> dict:
        fault = {"name": name, "start": start, "end": time.time(), **extra}
        self.timeline["faults"].append(fault)
        print(f"  {fault['start'] - self.load_start:6.1f}s {name} ({fault['end'] - fault['start']:.2f}s)", flush=True)
        return fault

    def _change(self, what: str, client: str, *args: str, redis_down: bool = False) -> None:
        start = time.time()
        self._manage(self.service_env, *args)
        end = time.time()
        change = {"client": client, "what": what, "start": start, "end": end, "redis_down": redis_down}
        change["committed"] = self._written_at(what, client, start, end)
        self.timeline["changes"].append(change)

    def _written_at(self, what: str, client: str, start: float, end: float) -> float:
        """When the command wrote the change (its row's stamp, taken just before its commit).

        The command's own start-up costs seconds; measuring from its exit would hide them in the
        propagation. Falls back to the exit time if the stamp is not between start and end.
        """
        if what == "grant":
            sql = (
                "SELECT g.created FROM drf_m2m_auth_resourcegrant g JOIN drf_m2m_auth_client c "
                "ON c.id = g.client_id WHERE c.client_id = %s AND g.resource = 'orders'"
            )
        else:
            sql = "SELECT updated FROM drf_m2m_auth_client WHERE client_id = %s"
        with self.pg.connect(self.service_env["TESTPROJECT_PG_NAME"]) as conn:
            row = conn.execute(sql, (client,)).fetchone()
        stamp = row[0].timestamp() if row else end
        return stamp if start <= stamp <= end else end

    def fault_rotation(self, emergency: bool = False) -> None:
        start = time.time()
        answer = self.ops.send("rotate", emergency=emergency)
        self.timeline["generations"].append({**answer, "emergency": emergency})
        self._fault("emergency_rotation" if emergency else "rotation", start, kid=answer["kid"])

    def fault_emergency_rotation(self) -> None:
        self.fault_rotation(emergency=True)

    def fault_control_plane(self) -> None:
        start = time.time()
        self._change("revoke", "watch-revoke", "m2m_revoke", "--deactivate", "watch-revoke")
        self._change("grant", "watch-grant", "m2m_grant", "watch-grant", "orders")
        self._fault("control_plane", start)

    def fault_jwks_down(self) -> None:
        start = time.time()
        self.issuer.kill()
        time.sleep(max(0.0, start + JWKS_DOWN_S - time.time()))
        self.issuer.start("/issuer/.well-known/jwks.json")
        self._fault("jwks_down", start)

    def fault_redis_down(self) -> None:
        start = time.time()
        os.killpg(self.redis.proc.pid, signal.SIGKILL)
        self.redis.proc.wait(10)
        self.redis.socket.unlink(missing_ok=True)
        time.sleep(max(0.0, start + REDIS_CHANGE_AT - time.time()))
        if self.ours:
            self._change("revoke", "watch-outage", "m2m_revoke", "--deactivate", "watch-outage", redis_down=True)
        time.sleep(max(0.0, start + REDIS_DOWN_S - time.time()))
        self.redis.start()
        self._fault("redis_down", start)

    def fault_postgres_restart(self) -> None:
        start = time.time()
        restart_postgres(self.pg)
        self._fault("postgres_restart", start)

    def fault_status_list_revoke(self) -> None:
        """The issuer revokes one token in its status list (the operator's command, in issuer_ops)."""
        answer = self.ops.ask("token_status", client="watch-status", kind="watch_status")
        change = {
            "client": "watch-status",
            "what": "token_status",
            "start": answer["started"],
            "end": answer["ended"],
            "committed": answer["started"],  # the row is committed in between: the stricter time
            "redis_down": False,
            "generation": answer["generation"],
        }
        self.timeline["changes"].append(change)
        self._fault("status_list_revoke", answer["started"], said=answer["said"])

    def fault_worker_kill(self) -> None:
        pid = self.service.worker_pids()[0]
        start = time.time()
        os.kill(pid, signal.SIGKILL)
        self._fault("worker_kill", start, pid=pid, concurrency=1)  # a sync worker serves one request at a time

    # --- the run ------------------------------------------------------------------------------------

    def run(self) -> dict:
        p = self.profile
        history = self.out / "history.jsonl"
        history.unlink(missing_ok=True)
        env = base_env(
            SOAK_TOKENS=str(self.tokens),
            SOAK_HISTORY=str(history),
            SOAK_RATE=str(p.rate),
            SOAK_MAX_REQUESTS=str(int(p.users * p.rate * p.duration * 1.2)),
            SOAK_TIMEOUT="10",
            SOAK_WATCH_SHARE="0.2",  # about 7 requests/s per watched client: propagation to ~0.15 s
        )
        locust_args = [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless"]
        # Locust's own -t counts its start-up (seconds on a busy machine): the harness ends the load
        # itself at load_start + duration (SIGTERM: Locust stops its users and closes the history).
        locust_args += ["-u", str(p.users), "-r", str(p.users), "-t", f"{int(p.duration) + 60}s", "--stop-timeout", "5"]
        locust_args += ["--host", f"http://127.0.0.1:{self.nginx_port}", "--only-summary", "--loglevel", "WARNING"]
        self.timeline["workers"]["start"] = [process_sample(pid) for pid in self.service.worker_pids()]
        locust = _spawn(locust_args, env, self.out / "locust.log")
        self.started.append(_Stoppable(lambda: stop_process(locust)))
        wait_for(lambda: history.exists() and history.stat().st_size > 0, 60, "locust", locust, self.out / "locust.log")
        self.load_start = self.timeline["load_start"] = time.time()
        for offset, name in SCHEDULE:
            if name in REVOCATION_FAULTS and not self.ours:
                continue
            time.sleep(max(0.0, self.load_start + offset * p.spread - time.time()))
            getattr(self, f"fault_{name}")()
        time.sleep(max(0.0, self.load_start + p.duration - time.time()))
        if locust.poll() is None:
            locust.send_signal(signal.SIGTERM)
        locust.wait(60)
        self.timeline["load_end"] = time.time()
        self.timeline["workers"]["end"] = [process_sample(pid) for pid in self.service.worker_pids()]
        self.timeline["evidence"] = self.evidence()
        (self.out / "timeline.json").write_text(json.dumps(self.timeline, indent=1))
        records = [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
        result = check(records, self.timeline)
        summary = {**result.as_dict(), "timeline": self.timeline, "profile": p.__dict__}
        (self.out / "result.json").write_text(json.dumps(summary, indent=1, default=str))
        (self.out / "report.md").write_text(report.table(summary))
        return {"summary": summary, "records": records}

    def evidence(self) -> dict[str, int]:
        """How often each fault shows in the logs: a fault that left no trace did not happen."""
        service = (self.tmp / "service-b.log").read_text(errors="replace")
        postgres = self.pg.log.read_text(errors="replace")
        seen = {
            "postgres_restart": postgres.count("database system is ready to accept connections") - 1,
            "worker_kill": service.count("Booting worker") - WORKERS,
        }
        if self.ours:  # what our logs say; a peer logs neither (nor uses Redis)
            seen["jwks_down"] = service.count("Cannot refresh JWKS")
            seen["redis_down"] = service.count("cannot read the cache")
        return seen


class _Stoppable:
    def __init__(self, stop):
        self.stop = stop


PEER_MODULES = {"pyjwt": ("jwt",), "simplejwt": ("rest_framework_simplejwt", "jwt"), "authlib": ("authlib",)}


def missing_components(extra_modules: tuple[str, ...] = ()) -> list[str]:
    missing = []
    if postgres_bindir() is None:
        missing.append("PostgreSQL (postgres, initdb)")
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if find_nginx() is None:
        missing.append("nginx")
    for module in ("locust", "psycopg", "redis", "gunicorn", *extra_modules):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"python package {module} (pip install -e '.[test,soak,bench]')")
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--short", action="store_true", help="about 90 s of load (the default)")
    group.add_argument("--long", action="store_true", help="10 minutes, 2,000 clients, a plot")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="history, timeline, result, report")
    parser.add_argument(
        "--system", choices=SYSTEMS, default="ours", help="the library service-b runs (peers: no revocation)"
    )
    parser.add_argument("--service-settings", default=None, help="service-b's settings module (default: by --system)")
    parser.add_argument("--plot", action="store_true", help="latency-over-time PNG (always with --long)")
    args = parser.parse_args(argv)
    missing = missing_components(PEER_MODULES.get(args.system, ()))
    if missing:
        print("SKIP: not installed: " + ", ".join(missing), flush=True)
        return SKIP
    args.out.mkdir(parents=True, exist_ok=True)
    settings = args.service_settings or (SERVICE_SETTINGS if args.system == "ours" else PEER_SETTINGS)
    soak = Soak(LONG if args.long else SHORT, args.out, settings, find_nginx() or "nginx", args.system)
    try:
        began = time.monotonic()
        print(f"soak: starting the topology in {soak.tmp}", flush=True)
        soak.start()
        print(f"soak: load and faults (topology up in {time.monotonic() - began:.1f} s)", flush=True)
        outcome = soak.run()
        print(f"soak: done in {time.monotonic() - began:.1f} s", flush=True)
    finally:
        soak.stop()
        logs = args.out / "logs"
        logs.mkdir(exist_ok=True)
        for log in soak.tmp.rglob("*.log"):
            shutil.copy(log, logs / log.name)
        shutil.rmtree(soak.tmp, ignore_errors=True)
    summary = outcome["summary"]
    print(report.table(summary), flush=True)
    if args.long or args.plot:
        print(f"plot: {report.plot(outcome['records'], summary, args.out / 'latency.png')}")
    return 1 if summary["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
