"""What the floor is made of, and where drf_m2m_auth's time goes on a token it has not seen.

    python benchmarks/breakdown.py [--alg RS256|ES256]

Times each step on its own (timeit, thread CPU time, best of 7) on one token, in one process.
The steps of ours are its internal functions (drf_m2m_auth.tokens and friends), so this script
follows the library's internals: a step whose function has moved prints "n/a". Steps timed alone
run with hot caches, so their sum is below a real call; the shares are what matter.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
import timeit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))

import common  # noqa: E402
from jwks_server import JWKSServer  # noqa: E402

REPEAT = 9


class Steps:
    """Steps timed round-robin (each repeat visits every step), the best repeat of each kept."""

    def __init__(self) -> None:
        self.items: list = []

    def add(self, name: str, fn, number: int = 2000) -> None:
        try:
            fn()
        except Exception as exc:  # an internal moved: say so, keep going
            self.items.append([f"{name} [{type(exc).__name__}]", None, number, None])
            return
        self.items.append([name, fn, number, float("inf")])

    def get(self, name: str) -> float:
        return next(item[3] for item in self.items if item[0] == name)


def row(name: str, seconds: float | None, total: float) -> str:
    if seconds is None:
        return f"  {name:<52} {'n/a':>9}"
    return f"  {name:<52} {seconds * 1e6:8.2f}us {100 * seconds / total:5.1f}%"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--alg", default="RS256", choices=common.ALGS)
    args = ap.parse_args(argv)
    alg = args.alg

    keys = common.generate_keys()
    server = JWKSServer(common.jwks_document(keys)).start()
    server.status_list_body = common.status_list_token(keys, server.issuer).encode()  # case AS's list
    tmp = tempfile.mkdtemp(prefix="m2m-breakdown-")
    try:
        n_distinct = 3000
        tokens = common.one_round_tokens(keys, alg, server.issuer, n_distinct)
        data = {alg: tokens}
        path = os.path.join(tmp, "tokens.json")
        with open(path, "w") as fh:
            json.dump(data, fh)
        from worker import Worker

        cfg = {
            "system": "ours",
            "alg": alg,
            "issuer": server.issuer,
            "jwks_url": server.jwks_url("breakdown"),
            "algorithms": list(common.ALGS),
            "tokens_file": path,
            "target_s": 0.05,
            "mode": "main",
            "cache": "locmem",
        }
        w = Worker()
        w.cmd_setup(cfg)
        from systems import FloorSystem

        floor = FloorSystem(cfg)
        floor.setup()
        tok = tokens["A"]
        h, p, s = tok.split(".")
        print(f"{alg}, token {len(tok)} bytes (header {len(h)}, payload {len(p)}, signature {len(s)})\n")

        # -- the floor, step by step -------------------------------------------------------------
        def b64(x):
            return base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))

        hb, pb, sb = b64(h), b64(p), b64(s)
        pub = common.load_private(keys[alg]).public_key()
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        msg = (h + "." + p).encode()
        if alg == "RS256":

            def crypto():
                pub.verify(sb, msg, padding.PKCS1v15(), hashes.SHA256())
        else:

            def crypto():
                der = encode_dss_signature(int.from_bytes(sb[:32], "big"), int.from_bytes(sb[32:], "big"))
                pub.verify(der, msg, ec.ECDSA(hashes.SHA256()))

        claims = json.loads(pb)

        def claim_checks():
            now = time.time()
            return (
                claims["exp"] > now
                and claims["iat"] <= now
                and claims["iss"] == server.issuer
                and claims["aud"] == common.AUDIENCE
                and isinstance(claims["sub"], str)
                and claims["sub"]
            )

        # Totals: authenticate() over distinct pre-built requests, as in case B.
        per = (n_distinct - 20) // REPEAT
        f_it = iter([w.drf_request(t) for t in tokens["B"][0][: per * REPEAT + 1]])
        o_it = iter([w.drf_request(t) for t in tokens["B"][0][: per * REPEAT + 1]])
        from drf_m2m_auth import jose as T
        from drf_m2m_auth import revocation
        from drf_m2m_auth.authentication import M2MJWTAuthentication
        from drf_m2m_auth.principal import AccessToken, ServiceClient
        from drf_m2m_auth.scopes import scopes_from_claims
        from drf_m2m_auth.verifier import get_verifier

        auth = M2MJWTAuthentication()
        v = get_verifier()
        req = w.drf_request(tok)
        floor_steps, ours_steps = Steps(), Steps()
        totals = Steps()
        totals.add("floor", lambda: floor.authenticate(next(f_it)), per)
        totals.add("ours", lambda: auth.authenticate(next(o_it)), per)

        floor_steps.add("split + 3 x base64.urlsafe_b64decode", lambda: [b64(x) for x in tok.split(".")])
        floor_steps.add("2 x json.loads", lambda: (json.loads(hb), json.loads(pb)))
        floor_steps.add(f"cryptography verify ({alg})", crypto, 500)
        floor_steps.add("claim checks (exp iat iss aud sub)", claim_checks)

        import hashlib

        header, payload = T.json_object(hb), T.json_object(pb)
        source = next(iter(v.sources.values()))
        trust = v.trust_list[0]
        kid = header.get("kid")
        key = source.get_key(kid, alg)
        scopes = scopes_from_claims(payload, trust.scope_claims)
        token_obj = auth.authenticate(w.drf_request(tok))[1]
        add = ours_steps.add
        add("get_credentials (Authorization header)", lambda: auth.get_credentials(req))
        add("sha256 of the token (cache key)", lambda: hashlib.sha256(tok.encode()).digest())
        add("split + 3 x jose.b64url_decode", lambda: [T.b64url_decode(x) for x in tok.split(".")])
        add("2 x jose.json_object (duplicate-key check)", lambda: (T.json_object(hb), T.json_object(pb)))
        add("TokenVerifier._check_header", lambda: v._check_header(trust, header))
        add("JWKSource.get_key", lambda: source.get_key(kid, alg))
        add(
            f"SIGNATURE_VERIFIERS[{alg}] (incl. signing-input encode)",
            lambda: T.SIGNATURE_VERIFIERS[alg](key.public_key, sb, tok[: len(h) + 1 + len(p)].encode()),
            500,
        )
        add("TokenVerifier._check_claims", lambda: v._check_claims(trust, payload))
        add("scopes_from_claims", lambda: scopes_from_claims(payload, trust.scope_claims))
        add(
            "AccessToken(...) + ServiceClient.from_token",
            lambda: ServiceClient.from_token(AccessToken(payload, scopes, header=header, token_hash="0" * 64, kid=kid)),
        )
        add("revocation.check", lambda: revocation.check(token_obj))
        add("on_accepted (signal, no receivers)", lambda: auth.on_accepted(req, token_obj))

        # Round-robin: every repeat visits every step, so the machine's drift touches all alike.
        for _ in range(REPEAT):
            for group in (totals, floor_steps, ours_steps):
                for item in group.items:
                    if item[1] is not None:
                        timer = timeit.Timer(item[1], timer=time.thread_time)
                        item[3] = min(item[3], timer.timeit(number=item[2]) / item[2])
        floor_total, ours_total = totals.get("floor"), totals.get("ours")

        print(f"floor: authenticate() on unseen tokens {floor_total * 1e6:.2f}us CPU, of which")
        for name, _, _, sec in floor_steps.items:
            print(row(name, sec, floor_total))
        print(
            row(
                "rest: header read, call overhead, result objects",
                floor_total - sum(i[3] for i in floor_steps.items if i[3]),
                floor_total,
            )
        )
        print(
            f"\nours: authenticate() on unseen tokens {ours_total * 1e6:.2f}us CPU "
            f"({ours_total / floor_total:.2f}x the floor), of which"
        )
        for name, _, _, sec in ours_steps.items:
            print(row(name, sec, ours_total))
        known = sum(i[3] for i in ours_steps.items if i[3])
        print(row("rest: call layers, cache insert, result tuple", ours_total - known, ours_total))
        print(f"\nours - floor = {(ours_total - floor_total) * 1e6:.2f}us per unseen token")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
