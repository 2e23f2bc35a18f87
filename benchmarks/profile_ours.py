"""Where does drf_m2m_auth spend its time? cProfile one case of one system, in this process.

    python benchmarks/profile_ours.py [--case A|B|Cs|Cd|N|DF|DB|DAF|DAB] [--alg RS256] [--system ours]
                                      [--ops 20000] [--sort tottime] [--limit 30]

Same set-up as a run.py worker (JWKS over HTTP on 127.0.0.1, keys cached, paths warmed), then the
case's loop under cProfile. For B and Cd, ``--ops`` distinct tokens are minted first (RS256 takes
about 1 ms each).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))

import common  # noqa: E402
from jwks_server import JWKSServer  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", default="A")
    ap.add_argument("--alg", default="RS256", choices=common.ALGS)
    ap.add_argument("--system", default="ours")
    ap.add_argument("--ops", type=int, default=None)
    ap.add_argument("--sort", default="tottime")
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--no-profile", action="store_true", help="time only (thread CPU time, no profiler)")
    args = ap.parse_args(argv)
    distinct = args.case in ("B", "Cd")
    ops = args.ops or (2000 if distinct else 20000)

    keys = common.generate_keys()
    server = JWKSServer(common.jwks_document(keys)).start()
    server.status_list_body = common.status_list_token(keys, server.issuer).encode()  # case AS's list
    tmp = tempfile.mkdtemp(prefix="m2m-profile-")
    try:
        n_distinct = ops if distinct else 1
        toks = common.one_round_tokens(keys, args.alg, server.issuer, n_distinct)
        data = {args.alg: toks}
        path = os.path.join(tmp, "tokens.json")
        with open(path, "w") as fh:
            json.dump(data, fh)
        from worker import Worker

        w = Worker()
        w.cmd_setup(
            {
                "system": args.system,
                "alg": args.alg,
                "issuer": server.issuer,
                "jwks_url": server.jwks_url("profile"),
                "algorithms": list(common.ALGS),
                "tokens_file": path,
                "target_s": 0.05,
                "mode": "main",
                "cache": "locmem",
            }
        )
        if distinct:
            tokens = data[args.alg][args.case][0]
        else:
            tok = {"A": toks["A"], "Cs": toks["Cs"], "N": toks["Cs"]}.get(args.case, toks["D"])
            tokens = [tok] * ops
        if args.no_profile:
            t0 = time.perf_counter()
            per_op = w.run_case(args.case, tokens, batches=5)
            print(
                f"{args.system} {args.case} {args.alg}: {per_op * 1e6:.2f} us/op CPU (fastest of 5 slices), "
                f"wall {time.perf_counter() - t0:.1f}s"
            )
            return 0
        prof = w.profiler = cProfile.Profile()
        per_op = w.run_case(args.case, tokens)
        out = io.StringIO()
        st = pstats.Stats(prof, stream=out)
        st.sort_stats(args.sort).print_stats(args.limit)
        if os.environ.get("PROFILE_CALLERS"):
            st.print_callers(os.environ["PROFILE_CALLERS"])
        total = sum(v[2] for v in st.stats.values())
        print(
            f"{args.system} {args.case} {args.alg}: {per_op * 1e6:.2f} us/op under cProfile; "
            f"profiled total {total:.3f}s over {len(tokens)} ops"
        )
        print(out.getvalue())
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
