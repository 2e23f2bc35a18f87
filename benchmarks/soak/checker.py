"""Replay a soak run's history against the truth and count what went wrong.

Pure Python, no Django: ``check(history, timeline) -> Result``. ``history`` is the locustfile's
records; ``timeline`` is what the harness did and when (wall-clock seconds, the clock the
locustfile uses):

- ``settings``: the running service's REVOCATION_CHECK_INTERVAL and REVOCATION_DB_CHECK_INTERVAL,
  and STATUS_LIST_TTL (the issuer's list ttl as service-b clamps it);
- ``faults``: ``{"name", "start", "end", ...}``; a ``worker_kill`` also has ``pid``;
- ``changes``: ``{"client", "what": "revoke"|"grant"|"token_status", "start", "end", "committed",
  "redis_down": bool}``, measured around the command; ``committed`` is the stamp the command wrote
  on the row (just before its commit; ``end``, its exit, if unknown), or for ``token_status`` (a
  token revoked in the issuer's status list) the command's start;
- ``generations``: token sets ``{"generation", "published", "emergency"}``.

Truth per authenticated request: an invalid kind (expired, wrong_aud, tampered, revoked_client)
must never be a 200 (else a *false accept*); a valid token must be a 200 (else a *false reject*),
except a token of a generation whose key an emergency rotation withdrew (not judged once the
rotation is published); a client under a change has its old answer until the change starts and its
new answer from ``committed + bound`` (bound: REVOCATION_CHECK_INTERVAL + 0.5 s, or
REVOCATION_DB_CHECK_INTERVAL while Redis is down, or the status list's ttl + 1 s for a token revoked
at the issuer), either in between (a 401 for a token whose key an emergency
rotation withdrew is not judged); a change with no request after its bound is a violation; the
latest old answer to a request sent after ``committed`` is the change's propagation (a lower bound
on it: the worker had not seen the change when that request was sent). A 5xx or a timeout
(status 0) is a failure, except one that was in flight on a worker at the moment it was killed
(sent before the SIGKILL, answered after it). 503 answers are also listed with their times.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

INVALID_KINDS = frozenset({"expired", "wrong_aud", "tampered", "revoked_client"})
CONTROL_PLANE_SLACK = 0.5  # control-plane changes within REVOCATION_CHECK_INTERVAL + 0.5 s
KILL_SLACK = 0.005  # the harness stamps the kill just before os.kill


@dataclass
class Result:
    requests: int = 0
    auth_requests: int = 0
    floor_requests: int = 0
    false_accepts: list = field(default_factory=list)
    false_rejects: list = field(default_factory=list)
    failures: list = field(default_factory=list)  # 5xx and timeouts outside the allowed cases
    in_flight_at_kill: list = field(default_factory=list)  # allowed failures, for the report
    responses_503: list = field(default_factory=list)
    unjudged: int = 0
    propagation: list = field(default_factory=list)  # one dict per change
    latency: dict = field(default_factory=dict)
    kills: list = field(default_factory=list)
    evidence: dict = field(default_factory=dict)  # fault -> log lines showing it happened

    @property
    def violations(self) -> list[str]:
        out = []
        for name in ("false_accepts", "false_rejects", "failures"):
            items = getattr(self, name)
            if items:
                out.append(f"{len(items)} {name.replace('_', ' ')}: " + "; ".join(describe(r) for r in items[:5]))
        allowed = sum(k.get("concurrency", 1) for k in self.kills)
        if len(self.in_flight_at_kill) > allowed:
            out.append(
                f"{len(self.in_flight_at_kill)} requests failed at a worker kill, more than the "
                f"{allowed} a killed worker can have in flight"
            )
        out += [f"fault {name} left no trace in the logs" for name, count in self.evidence.items() if count <= 0]
        for change in self.propagation:
            if not change.get("judged_after_bound", 1):
                out.append(
                    f"{change['what']} of {change['client']}: no request after its bound, so it was never judged"
                )
            if change["late"]:
                out.append(
                    f"{change['what']} of {change['client']}: old answer {change['late']} time(s) past the "
                    f"{change['bound']:.2f}s bound (longest {change['longest']:.3f}s)"
                )
        return out

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "auth_requests": self.auth_requests,
            "floor_requests": self.floor_requests,
            "false_accepts": len(self.false_accepts),
            "false_rejects": len(self.false_rejects),
            "failures": len(self.failures),
            "in_flight_at_kill": len(self.in_flight_at_kill),
            "responses_503": len(self.responses_503),
            "windows_503": windows(self.responses_503),
            "false_reject_times": [r["t0"] for r in self.false_rejects],
            "false_reject_reasons": sorted({str(r.get("www") or r["status"]) for r in self.false_rejects}),
            "unjudged": self.unjudged,
            "propagation": self.propagation,
            "evidence": self.evidence,
            "latency": self.latency,
            "violations": self.violations,
            "examples": {
                name: [describe(r) for r in getattr(self, name)[:20]]
                for name in ("false_accepts", "false_rejects", "failures", "in_flight_at_kill", "responses_503")
            },
        }


def windows(records: list[dict], gap: float = 1.0) -> list[list[float]]:
    """Answers grouped into windows (a new one after ``gap`` seconds without any): [first t0, last t1, count]."""
    out: list[list[float]] = []
    for r in sorted(records, key=lambda r: r["t0"]):
        if out and r["t0"] - out[-1][1] <= gap:
            out[-1][1] = max(out[-1][1], r["t1"])
            out[-1][2] += 1
        else:
            out.append([r["t0"], r["t1"], 1])
    return out


def describe(record: dict) -> str:
    fault = record.get("_fault")
    where = f" during {fault}" if fault else ""
    return (
        f"{record.get('kind')} {record.get('client', '')} gen {record.get('gen')} -> {record['status']}"
        f"{' ' + record['error'] if record.get('error') else ''} at t0={record['t0']:.3f}{where}"
        + (f" ({record['_since'] * 1000:+.0f} ms from the emergency rotation)" if "_since" in record else "")
        + (f" [{record['www']}]" if record.get("www") else "")
    )


def change_bound(change: dict, settings: dict) -> float:
    if change["what"] == "token_status":  # a status-list revocation, within the list's ttl + 1 s
        return float(settings["STATUS_LIST_TTL"]) + 1.0
    if change.get("redis_down"):
        return float(settings["REVOCATION_DB_CHECK_INTERVAL"])
    return float(settings["REVOCATION_CHECK_INTERVAL"]) + CONTROL_PLANE_SLACK


def _expected_for_change(change: dict) -> tuple[set[int], set[int]]:
    """(old answers, new answers) of the client a change is about."""
    if change["what"] in ("revoke", "token_status"):
        return {200}, {401}
    return {403}, {200}  # grant: authenticated but not allowed, then allowed


def _fault_at(t: float, faults: list[dict]) -> str | None:
    """The faults under way at ``t`` (or ended less than a second before), with the time since each began."""
    names = [f"{f['name']} +{t - f['start']:.3f}s" for f in faults if f["start"] <= t <= f["end"] + 1.0]
    return ", ".join(names) or None


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def check(history: list[dict], timeline: dict) -> Result:
    settings = timeline["settings"]
    faults = timeline.get("faults", [])
    kills = [f for f in faults if f["name"] == "worker_kill"]
    changes = {
        c["client"]: dict(c, bound=change_bound(c, settings), committed=c.get("committed", c["end"]))
        for c in timeline.get("changes", [])
    }
    # An emergency rotation withdraws the older generations' key at its commit, somewhere between
    # the rotation's start and its publication: a request of such a generation answered after that
    # start may meet either key set, so it is not judged.
    withdrawn: dict = {}
    generations = sorted(timeline.get("generations", []), key=lambda g: g["generation"])
    for gen in generations:
        if gen.get("emergency"):
            for older in generations:
                if older["generation"] < gen["generation"]:
                    withdrawn.setdefault(older["generation"], gen.get("started", gen["published"]))
    emergencies = [g["published"] for g in generations if g.get("emergency")]
    result = Result(kills=kills, evidence=timeline.get("evidence", {}))
    per_change: dict[str, dict[str, Any]] = {
        c: {"old_after_end": [], "late": 0, "per_worker": {}, "judged_new": 0} for c in changes
    }
    auth_ms, floor_ms = [], []
    for r in history:
        result.requests += 1
        status, t0 = r["status"], r["t0"]
        fault = _fault_at(t0, faults)
        if fault:
            r["_fault"] = fault
        if status == 0 or status >= 500:
            if status == 503:
                result.responses_503.append(r)
            if any(t0 <= k["start"] + KILL_SLACK and r["t1"] >= k["start"] for k in kills):
                result.in_flight_at_kill.append(r)
            else:
                result.failures.append(r)
            if r["path"] == "auth":
                result.auth_requests += 1
            else:
                result.floor_requests += 1
            continue
        if r["path"] == "floor":
            result.floor_requests += 1
            if status == 200:
                floor_ms.append((r["t1"] - t0) * 1000)
            else:
                result.failures.append(r)
            continue
        result.auth_requests += 1
        kind = r.get("kind")
        if kind in INVALID_KINDS:
            if status == 200:
                result.false_accepts.append(r)
            continue
        gen = r.get("gen")
        key_withdrawn = gen in withdrawn and r["t1"] >= withdrawn[gen]
        change = changes.get(r.get("client"))
        if change is not None:
            old, new = _expected_for_change(change)
            if r["t1"] < change["start"]:
                expected = old
            elif t0 > change["committed"] + change["bound"]:
                expected = new
                per_change[r["client"]]["judged_new"] += 1
            else:
                expected = old | new
            if key_withdrawn and status == 401 and 401 not in expected:
                result.unjudged += 1  # its key withdrawn by an emergency rotation: a 401 may be right
                continue
            if t0 > change["committed"] and status in old:
                per_change[r["client"]]["old_after_end"].append(t0 - change["committed"])
                workers = per_change[r["client"]]["per_worker"]
                pid = r.get("pid") or "?"
                workers[pid] = round(max(workers.get(pid, 0.0), t0 - change["committed"]), 3)
            if status not in expected:
                if status in old and expected == new:
                    per_change[r["client"]]["late"] += 1
                (result.false_accepts if status == 200 else result.false_rejects).append(r)
            continue
        if key_withdrawn:
            result.unjudged += 1
            continue
        if status != 200:
            since = [t0 - e for e in emergencies if -1 <= t0 - e < 60]
            if since:
                r["_since"] = min(since)
            result.false_rejects.append(r)
        else:
            auth_ms.append((r["t1"] - t0) * 1000)
    for client, change in changes.items():
        seen = per_change[client]["old_after_end"]
        result.propagation.append(
            {
                "client": client,
                "what": change["what"],
                "redis_down": bool(change.get("redis_down")),
                "bound": change["bound"],
                "command_s": round(change["end"] - change["start"], 3),
                "written_after_s": round(change["committed"] - change["start"], 3),
                "longest": round(max(seen), 3) if seen else 0.0,
                "late": per_change[client]["late"],
                "judged_after_bound": per_change[client]["judged_new"],
                "per_worker": per_change[client]["per_worker"],
            }
        )
    result.latency = {
        "auth_p50_ms": _percentile(auth_ms, 0.5),
        "auth_p99_ms": _percentile(auth_ms, 0.99),
        "floor_p50_ms": _percentile(floor_ms, 0.5),
        "floor_p99_ms": _percentile(floor_ms, 0.99),
    }
    if auth_ms and floor_ms:
        result.latency["p50_ratio"] = result.latency["auth_p50_ms"] / result.latency["floor_p50_ms"]
        result.latency["p99_ratio"] = result.latency["auth_p99_ms"] / result.latency["floor_p99_ms"]
        result.latency["auth_mean_ms"] = statistics.fmean(auth_ms)
        result.latency["floor_mean_ms"] = statistics.fmean(floor_ms)
        # What a worker serves per second on the authenticated endpoint, relative to the floor.
        result.latency["rps_ratio"] = result.latency["floor_mean_ms"] / result.latency["auth_mean_ms"]
    return result
