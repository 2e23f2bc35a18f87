"""The soak run's report: a Markdown table from result.json, and a latency-over-time PNG.

``python benchmarks/soak/report.py RESULTS_DIR [--plot]`` re-renders a saved run;
``python benchmarks/soak/report.py --compare DIR...`` prints the runs side by side (an RST table,
for docs/dev: ours and each peer).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path


def _ms(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f} ms"


NA = "n/a (the library has no revocation)"
REVOCATION_CHANGES = (("revoke", False), ("grant", False), ("revoke", True), ("token_status", False))


def system_of(summary: dict) -> str:
    return summary["timeline"].get("system", "ours")


def memory_drift(summary: dict) -> tuple[float, float] | None:
    """(largest RSS growth in MB, in %) among the workers alive at the start and at the end."""
    workers = summary["timeline"]["workers"]
    starts = {w["pid"]: w for w in workers.get("start", []) if w.get("rss_mb")}
    pairs = [(starts[w["pid"]]["rss_mb"], w["rss_mb"]) for w in workers.get("end", []) if w["pid"] in starts]
    pairs = [(a, b) for a, b in pairs if b]
    if not pairs:
        return None
    a, b = max(pairs, key=lambda pair: pair[1] - pair[0])
    return b - a, 100 * (b - a) / a


def windows_503(summary: dict) -> str:
    start = summary["timeline"]["load_start"]
    found = summary.get("windows_503", [])
    return ", ".join(f"{w[0] - start:.1f}-{w[1] - start:.1f} s ({w[2]})" for w in found) or "none"


def table(summary: dict) -> str:
    timeline = summary["timeline"]
    seconds = max(1e-9, timeline.get("load_end", 0) - timeline.get("load_start", 0))
    lat = summary["latency"]
    rows = [
        ("system (service-b)", system_of(summary)),
        (
            "requests (auth / floor)",
            f"{summary['requests']} ({summary['auth_requests']} / {summary['floor_requests']})",
        ),
        ("throughput", f"{summary['requests'] / seconds:.0f} req/s over {seconds:.0f} s"),
        ("auth p50 / p99", f"{_ms(lat.get('auth_p50_ms'))} / {_ms(lat.get('auth_p99_ms'))}"),
        ("floor p50 / p99", f"{_ms(lat.get('floor_p50_ms'))} / {_ms(lat.get('floor_p99_ms'))}"),
        (
            "p50 / p99 ratio to the floor",
            f"{lat.get('p50_ratio', float('nan')):.2f} / {lat.get('p99_ratio', float('nan')):.2f}",
        ),
        ("false accepts (must be 0)", str(summary["false_accepts"])),
        ("false rejects (must be 0)", str(summary["false_rejects"])),
        ("5xx and timeouts outside the bounds (must be 0)", str(summary["failures"])),
        ("failed while in flight on the killed worker", str(summary["in_flight_at_kill"])),
        ("503 answers (windows)", f"{summary['responses_503']} ({windows_503(summary)})"),
        ("RPS ratio to the floor (floor mean / auth mean latency)", f"{lat.get('rps_ratio', float('nan')):.2f}"),
        ("not judged (key withdrawn by the emergency rotation)", str(summary["unjudged"])),
    ]
    if system_of(summary) != "ours":
        rows.append(("propagation: control plane, Redis-down revocation, status list", NA))
    for change in summary["propagation"]:
        where = "Redis down" if change["redis_down"] else "Redis up"
        rows.append(
            (
                f"propagation: {change['what']} {change['client']} ({where})",
                f"{change['longest']:.3f} s after its commit (bound {change['bound']:.2f} s; command "
                f"{change['command_s']:.2f} s; late answers {change['late']})",
            )
        )
    drift = memory_drift(summary)
    if drift is not None:
        rows.append(("largest worker RSS growth", f"{drift[0]:+.1f} MB ({drift[1]:+.0f} %)"))
    starts = {w["pid"]: w for w in timeline["workers"].get("start", [])}
    for w in timeline["workers"].get("end", []):
        first = starts.get(w["pid"])
        before = f"{first['rss_mb']} MB, {first['fds']} fds" if first else "respawned"
        rows.append((f"worker {w['pid']} RSS, fds (start -> end)", f"{before} -> {w['rss_mb']} MB, {w['fds']} fds"))
    evidence = summary.get("evidence", {})
    for fault in timeline["faults"]:
        start = fault["start"] - timeline["load_start"]
        seen = f"; {evidence[fault['name']]} log line(s) show it" if fault["name"] in evidence else ""
        rows.append((f"fault {fault['name']}", f"at {start:.1f} s for {fault['end'] - fault['start']:.2f} s{seen}"))
    width = max(len(r[0]) for r in rows)
    lines = [f"| {'what'.ljust(width)} | figure |", f"| {'-' * width} | --- |"]
    lines += [f"| {name.ljust(width)} | {value} |" for name, value in rows]
    if summary["violations"]:
        lines += ["", "Violated bounds:"] + [f"- {v}" for v in summary["violations"]]
    for name, examples in summary.get("examples", {}).items():
        if examples:
            lines += ["", f"{name} (first {len(examples)}):"] + [f"  {e}" for e in examples]
    return "\n".join(lines) + "\n"


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def plot(records: list[dict], summary: dict, path: Path) -> Path:
    """p50/p99 of the authenticated endpoint and of the floor per second (per few seconds in a long
    run: about 150 points), fault windows shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t_start = summary["timeline"]["load_start"]
    generations = summary["timeline"].get("generations", [])
    # A token whose key an emergency rotation withdrew may be refused once it began: not marked.
    withdrawn = {
        g["generation"]: min(e.get("started", e["published"]) for e in generations if e.get("emergency"))
        for g in generations
        if any(e.get("emergency") and e["generation"] > g["generation"] for e in generations)
    }
    span = summary["timeline"].get("load_end", t_start) - t_start
    width = max(1, int(span // 150))  # seconds per point: about 150 points whatever the run's length
    buckets: dict[tuple[str, int], list[float]] = {}
    errors: list[tuple[float, int]] = []
    for r in records:
        second = int((r["t0"] - t_start) // width) * width
        if r["status"] == 200 and r.get("kind") in ("valid", "floor"):
            buckets.setdefault((r["path"], second), []).append((r["t1"] - r["t0"]) * 1000)
        elif r["status"] == 0 or r["status"] >= 500:
            errors.append((r["t0"] - t_start, r["status"]))
        elif r.get("kind") == "valid" and not (r.get("gen") in withdrawn and r["t1"] >= withdrawn[r["gen"]]):
            errors.append((r["t0"] - t_start, r["status"]))
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for endpoint, colour in (("auth", "tab:blue"), ("floor", "tab:grey")):
        seconds = sorted(s for p, s in buckets if p == endpoint)
        for q, style in ((0.5, "-"), (0.99, ":")):
            values = [_quantile(buckets[(endpoint, s)], q) for s in seconds]
            ax.plot(seconds, values, style, color=colour, label=f"{endpoint} p{int(q * 100)}")
    for fault in summary["timeline"]["faults"]:
        start, end = fault["start"] - t_start, max(fault["end"] - t_start, fault["start"] - t_start + 0.5)
        ax.axvspan(start, end, alpha=0.15, color="tab:red")
        ax.text(start, ax.get_ylim()[1] * 0.95, fault["name"], rotation=90, va="top", fontsize=8)
    if errors:
        label = "valid token refused, 5xx or timeout"
        ax.scatter([e[0] for e in errors], [1] * len(errors), marker="x", color="tab:red", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("seconds since the load started")
    ax.set_ylabel(f"latency (ms), per {width} s" if width > 1 else "latency (ms), per second")
    ax.set_title(f"soak run: service-b ({system_of(summary)}) under load and faults")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)  # small enough for the docs (docs/dev/soak-latency.png)
    plt.close(fig)
    return path


def _propagation(summary: dict, what: str, redis_down: bool) -> str:
    if system_of(summary) != "ours":
        return "n/a"
    for change in summary["propagation"]:
        if change["what"] == what and change["redis_down"] == redis_down:
            return f"{change['longest']:.2f} s (bound {change['bound']:.1f} s)"
    return "not run"


def compare(summaries: list[dict]) -> str:
    """The runs side by side, as an RST list-table (docs/dev/benchmarks.rst includes it)."""

    def row(name: str, values: list[str]) -> list[str]:
        return [f"   * - {name}"] + [f"     - {v}" for v in values]

    def each(fn) -> list[str]:
        return [fn(s) for s in summaries]

    def seconds(s: dict) -> float:
        return s["timeline"]["load_end"] - s["timeline"]["load_start"]

    def drift(s: dict) -> str:
        d = memory_drift(s)
        return "-" if d is None else f"{d[0]:+.1f} MB ({d[1]:+.0f} %)"

    lines = [".. list-table::", "   :header-rows: 1", "   :stub-columns: 1", ""]
    lines += row("system", each(system_of))
    lines += row(
        "requests (auth / floor)",
        each(lambda s: f"{s['requests']:,} ({s['auth_requests']:,} / {s['floor_requests']:,})"),
    )
    lines += row("throughput", each(lambda s: f"{s['requests'] / seconds(s):.0f} req/s over {seconds(s):.0f} s"))
    lines += row("RPS ratio to the floor", each(lambda s: f"{s['latency'].get('rps_ratio', float('nan')):.2f}"))
    lines += row(
        "p50 / p99 ratio to the floor",
        each(
            lambda s: (
                f"{s['latency'].get('p50_ratio', float('nan')):.2f} / {s['latency'].get('p99_ratio', float('nan')):.2f}"
            )
        ),
    )
    lines += row(
        "auth p50 / p99",
        each(lambda s: f"{_ms(s['latency'].get('auth_p50_ms'))} / {_ms(s['latency'].get('auth_p99_ms'))}"),
    )
    lines += row("false accepts", each(lambda s: str(s["false_accepts"])))
    lines += row("false rejects", each(lambda s: str(s["false_rejects"])))
    lines += row("5xx and timeouts outside the bounds", each(lambda s: str(s["failures"])))
    lines += row("failed in flight on the killed worker", each(lambda s: str(s["in_flight_at_kill"])))
    lines += row("503 answers (windows)", each(lambda s: f"{s['responses_503']} ({windows_503(s)})"))
    lines += row(
        "control-plane revoke / grant",
        each(lambda s: _propagation(s, "revoke", False) + " / " + _propagation(s, "grant", False)),
    )
    lines += row("revocation while Redis is down", each(lambda s: _propagation(s, "revoke", True)))
    lines += row("status-list revocation", each(lambda s: _propagation(s, "token_status", False)))
    lines += row("largest worker RSS growth", each(drift))
    lines += row("bounds violated", each(lambda s: str(len(s["violations"]))))
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--compare":
        print(compare([json.loads((Path(d) / "result.json").read_text()) for d in argv[1:]]))
        return 0
    directory = Path(argv[0])
    summary = json.loads((directory / "result.json").read_text())
    print(table(summary))
    if "--plot" in argv:
        history = (directory / "history.jsonl").read_text().splitlines()
        print(plot([json.loads(line) for line in history if line.strip()], summary, directory / "latency.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
