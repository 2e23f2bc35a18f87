"""Statistics over interleaved rounds, the performance targets, and the tables (text and RST)."""

from __future__ import annotations

import math
import statistics

ALGS = ("RS256", "ES256")
PEERS = ["pyjwt", "simplejwt", "authlib", "joserfc"]
LABELS = {
    "floor": "floor: b64 + json + 1 verify + claims",
    "ours": "drf_m2m_auth (ours)",
    "baseline": "drf_m2m_auth at the baseline revision",
    "pyjwt": "PyJWT + PyJWKClient",
    "simplejwt": "simplejwt, JWK_URL",
    "authlib": "authlib ResourceProtector (Auth0 quickstart)",
    "joserfc": "joserfc jwt.decode + claims registry",
}
TARGETS = {"A": 0.10, "B": 1.3, "C": 0.10, "D": 0.05}


def _quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def stats(xs: list[float]) -> dict:
    return {
        "median": statistics.median(xs),
        "p25": _quantile(xs, 0.25),
        "p75": _quantile(xs, 0.75),
        "min": min(xs),
        "max": max(xs),
        "n": len(xs),
    }


def _ratios(num: list[float], den: list[float], minus_one: bool = False) -> list[float]:
    return [a / b - (1.0 if minus_one else 0.0) for a, b in zip(num, den, strict=True)]


def summarize(result: dict) -> dict:
    samples = result["samples_s_per_op"]
    out: dict = {"per_alg": {}, "targets": {}}
    for alg in ALGS:
        floor = samples.get(f"floor/{alg}")
        if not floor:
            continue
        rows = {}
        for system in result["systems"]:
            s = samples.get(f"{system}/{alg}")
            if not s:
                continue
            row = {
                "A_x_floor": stats(_ratios(s["A"], floor["A"])),
                "B_x_floor": stats(_ratios(s["B"], floor["B"])),
                "Cs_added": stats(_ratios(s["Cs"], s["N"], minus_one=True)),
                "Cd_added": stats(_ratios(s["Cd"], s["N"], minus_one=True)),
                "Cs_x_floor_request": stats(_ratios(s["Cs"], floor["Cs"])),
                "us": {case: statistics.median(v) * 1e6 for case, v in s.items()},
            }
            if "AS" in s:
                row["AS_x_floor"] = stats(_ratios(s["AS"], floor["A"]))
            if "DF" in s:
                row["D_request_added"] = stats(_ratios(s["DF"], s["DB"], minus_one=True))
                row["D_auth_added_us"] = stats([(a - b) * 1e6 for a, b in zip(s["DAF"], s["DAB"], strict=True)])
                row["C_split"] = {
                    "auth_only_added": stats(_ratios(s["CA"], s["N"], minus_one=True)),
                    "ready_pair_hasscopes_added": stats(_ratios(s["CZ"], s["N"], minus_one=True)),
                }
                row["D_auth_added_x_floor"] = stats(
                    [(a - b) / f for a, b, f in zip(s["DAF"], s["DAB"], floor["A"], strict=True)]
                )
            rows[system] = row
        out["per_alg"][alg] = rows
    out["targets"] = _targets(result, out["per_alg"])
    return out


def _targets(result: dict, per_alg: dict) -> dict:
    t: dict = {}
    for alg, rows in per_alg.items():
        ours = rows.get("ours")
        if not ours:
            continue
        a = ours["A_x_floor"]["median"]
        t[f"A {alg}"] = {
            "value": a,
            "limit": TARGETS["A"],
            "met": a <= TARGETS["A"],
            "what": "same token: ours / floor",
        }
        if "AS_x_floor" in ours:
            a_s = ours["AS_x_floor"]["median"]
            t[f"A {alg} status claim"] = {
                "value": a_s,
                "limit": TARGETS["A"],
                "met": a_s <= TARGETS["A"],
                "what": "same token carrying a Token Status List claim: ours / floor",
            }
        b = ours["B_x_floor"]["median"]
        peers = {p: rows[p]["B_x_floor"]["median"] for p in PEERS if p in rows}
        ahead = all(b < v for v in peers.values())
        t[f"B {alg}"] = {
            "value": b,
            "limit": TARGETS["B"],
            "met": b <= TARGETS["B"] and ahead,
            "ahead_of_every_peer": ahead,
            "peers": peers,
            "what": "distinct tokens: ours / floor",
        }
        c = ours["Cs_added"]["median"]
        t[f"C {alg}"] = {
            "value": c,
            "limit": TARGETS["C"],
            "met": c <= TARGETS["C"],
            "what": "full request, same token: added over the no-auth request",
        }
        if "D_request_added" in ours:
            d = ours["D_request_added"]["median"]
            t[f"D {alg}"] = {
                "value": d,
                "limit": TARGETS["D"],
                "met": d <= TARGETS["D"],
                "what": "revocation + grant checks added to a cached-token request",
            }
    e = result.get("e", {}).get("ours")
    cooldown = (result.get("ours_settings") or {}).get("JWKS_REFRESH_COOLDOWN") or 30
    if e:
        for key in ("flood_1proc", "flood_4proc_shared_cache"):
            r = e[key]
            allowed = max(1, math.ceil(r["elapsed_s"] / cooldown))
            t[f"E {key}"] = {
                "value": r["fetches"],
                "limit": allowed,
                "met": r["fetches"] <= allowed and r["accepted"] == 0,
                "what": f"fetches for {r['tokens']} unknown kids in {r['elapsed_s']:.1f}s (cooldown {cooldown}s)",
            }
        for key in ("cold_16_threads", "cold_4_processes"):
            r = e[key]
            t[f"E {key}"] = {
                "value": r["fetches"],
                "limit": 1,
                "met": r["fetches"] == 1,
                "what": f"cold-start fetches; {r['accepted']} requests accepted",
            }
    checks = {}
    for label, info in result.get("setup", {}).items():
        checks[label] = all(info.get("rejected", {}).values())
    for label, info in result.get("post_checks", {}).items():
        checks[label] = checks.get(label, True) and all(info.values())
    t["security checks"] = {
        "value": sum(checks.values()),
        "limit": len(checks),
        "met": all(checks.values()),
        "what": "workers that refused every bad token and every revoked/expired cached token",
        "failed": [k for k, v in checks.items() if not v],
    }
    return t


# -- rendering --------------------------------------------------------------------------------


def _x(s: dict) -> str:
    return f"{s['median']:.2f}x [{s['p25']:.2f}-{s['p75']:.2f}]"


def _pct(s: dict) -> str:
    return f"{s['median'] * 100:+.1f}% [{s['p25'] * 100:+.1f}..{s['p75'] * 100:+.1f}]"


def _us(v: float) -> str:
    return f"{v:.1f}us" if v < 100 else f"{v:.0f}us"


def table_rows(result: dict, alg: str) -> tuple[list[str], list[list[str]]]:
    rows = result["summary"]["per_alg"][alg]
    head = [
        "system",
        "A same token (x floor)",
        "B distinct (x floor)",
        "C same token (+ vs no-auth)",
        "C distinct (+ vs no-auth)",
    ]
    body = []
    for system, r in rows.items():
        us = r["us"]
        body.append(
            [
                LABELS.get(system, system),
                f"{_x(r['A_x_floor'])} {_us(us['A'])}",
                f"{_x(r['B_x_floor'])} {_us(us['B'])}",
                f"{_pct(r['Cs_added'])} {_us(us['Cs'])}",
                f"{_pct(r['Cd_added'])} {_us(us['Cd'])}",
            ]
        )
    no_auth = rows["floor"]["us"]["N"]
    body.append(["no-auth request (request floor)", "", "", f"{_us(no_auth)}", ""])
    return head, body


def _fetches(n: int) -> str:
    return f"{n} fetch" if n == 1 else f"{n} fetches"


def e_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    head = [
        "system",
        "1,000 unknown kids, 1 process",
        "same, 4 processes (shared cache)",
        "cold, 16 threads",
        "cold, 4 processes (shared cache)",
    ]
    body = []
    e = result.get("e", {})
    for system in [s for s in result["systems"] if s in e]:  # run order (the JSON's keys are sorted)
        r = e[system]
        f1, f4 = r["flood_1proc"], r["flood_4proc_shared_cache"]
        body.append(
            [
                LABELS.get(system, system),
                f"{_fetches(f1['fetches'])} in {f1['elapsed_s']:.1f}s",
                f"{_fetches(f4['fetches'])} in {f4['elapsed_s']:.1f}s",
                f"{_fetches(r['cold_16_threads']['fetches'])} ({r['cold_16_threads']['accepted']}/16 ok)",
                f"{_fetches(r['cold_4_processes']['fetches'])} ({r['cold_4_processes']['accepted']}/4 ok)",
            ]
        )
    return head, body


def c_split_lines(result: dict) -> list[str]:
    lines = []
    for alg, rows in result["summary"]["per_alg"].items():
        r = rows.get("ours")
        if r and "C_split" in r:
            sp = r["C_split"]
            lines.append(
                f"{alg}: whole ({_pct(r['Cs_added'])}) = M2MJWTAuthentication alone, no permission "
                f"{_pct(sp['auth_only_added'])} + DRF's authenticated path and HasScopes with a ready "
                f"(client, token) {_pct(sp['ready_pair_hasscopes_added'])}; authenticate() by itself "
                f"{100 * r['us']['A'] / r['us']['N']:.1f}% of the no-auth request"
            )
    return lines


def d_lines(result: dict) -> list[str]:
    lines = []
    for alg, rows in result["summary"]["per_alg"].items():
        r = rows.get("ours")
        if r and "D_request_added" in r:
            us = r["us"]
            lines.append(
                f"{alg}: request with HasScopes + HasResourceGrant + revocation {_us(us['DF'])} vs HasScopes "
                f"only, revocation hook emptied {_us(us['DB'])}: {_pct(r['D_request_added'])}; "
                f"at authenticate(): +{r['D_auth_added_us']['median']:.2f}us "
                f"({_us(us['DAF'])} vs {_us(us['DAB'])})"
            )
    return lines


def _text_table(head: list[str], body: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*row) for row in body]
    return "\n".join(line.rstrip() for line in lines)


def _rst_table(head: list[str], body: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [head, *body]) or 1 for i in range(len(head))]
    rule = "  ".join("=" * w for w in widths)
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [rule, fmt.format(*head), rule] + [fmt.format(*[c or ".." for c in row]) for row in body] + [rule]
    return "\n".join(line.rstrip() for line in lines)


def _targets_lines(result: dict) -> list[str]:
    lines = []
    for name, t in result["summary"]["targets"].items():
        v, lim = t["value"], t["limit"]
        if name[0] in "ABCD" and name[1] == " ":
            shown = f"{v * 100:+.1f}% (limit {lim * 100:.0f}%)" if name[0] in "CD" else f"{v:.2f}x (limit {lim}x)"
        else:
            shown = f"{v} (limit {lim})"
        extra = ""
        if "ahead_of_every_peer" in t:
            extra = "; ahead of every peer" if t["ahead_of_every_peer"] else "; NOT ahead of every peer"
        if t.get("failed"):
            extra += f"; failed: {', '.join(t['failed'])}"
        lines.append(f"{'met   ' if t['met'] else 'MISSED'}  {name}: {shown}{extra}  -- {t['what']}")
    return lines


def _machine_line(result: dict) -> str:
    m = result["machine"]
    return (
        f"{m['nproc']} cores, {m['cpu']}, {m['implementation']} {m['python']}, {m['platform']}; "
        f"load average at start {m['loadavg_at_start']}"
    )


def render_text(result: dict) -> str:
    out = [
        f"Machine: {_machine_line(result)}",
        f"Command: {result['command']}",
        f"Rounds: {result['profile']['rounds']} (interleaved); cells: median of per-round ratios "
        "[interquartile range] and median absolute time per operation",
        "",
    ]
    for alg in result["summary"]["per_alg"]:
        out += [f"{alg}", _text_table(*table_rows(result, alg)), ""]
    c = c_split_lines(result)
    if c:
        out += ["C split (ours, same token): what the added cost is made of", *c, ""]
    d = d_lines(result)
    if d:
        out += ["D: revocation + grant checks on a cached token (ours)", *d, ""]
    if result.get("e"):
        out += ["E: JWKS fetches (RS256)", _text_table(*e_rows(result)), ""]
    out += ["Targets", *_targets_lines(result)]
    return "\n".join(out)


def render_rst(result: dict) -> str:
    out = []
    for alg in result["summary"]["per_alg"]:
        out += [f"**{alg}**", "", _rst_table(*table_rows(result, alg)), ""]
    c = c_split_lines(result)
    if c:
        out += ["**C split** (ours, same token):", ""] + [f"- {line}" for line in c] + [""]
    d = d_lines(result)
    if d:
        out += ["**D** (revocation and grant checks, cached token):", ""] + [f"- {line}" for line in d] + [""]
    if result.get("e"):
        out += ["**E** (JWKS fetches, RS256):", "", _rst_table(*e_rows(result)), ""]
    out += ["Targets:", ""] + [f"- ``{line}``" for line in _targets_lines(result)] + [""]
    return "\n".join(out)


if __name__ == "__main__":  # re-render a saved run: python benchmarks/report.py results/latest.json [--rst]
    import json
    import sys

    with open(sys.argv[1]) as fh:
        saved = json.load(fh)
    saved["summary"] = summarize(saved)
    print(render_rst(saved) if "--rst" in sys.argv else render_text(saved))
