"""The verifier's fused header/claim checks (token_rules.check_header / check_claims) against the tables.

The tables (HEADER_RULES, CLAIM_RULES) are the single definition of the rules: diagnostics runs them
one by one. The verifier asks a fused predicate first and runs the table only when the predicate
says no, so the two must give the same answer -- accepted, or the same first failure (reason, claim
and description) -- on every header and claim set. These tests run both on a corpus of bad ones.
"""

from __future__ import annotations

import itertools
import math

import pytest

from drf_m2m_auth import token_rules
from drf_m2m_auth.errors import InvalidToken
from drf_m2m_auth.principal import client_id_from_claims
from drf_m2m_auth.token_rules import CLAIM_RULES, HEADER_RULES, check_claims, check_header
from drf_m2m_auth.trust import IssuerTrust

NOW = 1_800_000_000.0
ISS = "https://issuer.example/"


def _trust(*, leeway: float = 0, require_at_jwt: bool = False, client_id=client_id_from_claims) -> IssuerTrust:
    return IssuerTrust(
        ISS,
        object(),  # type: ignore[arg-type]  # the rules never touch the JWKSource
        audiences=("api://a", "api://b"),
        algorithms=("RS256", "ES256"),
        leeway=leeway,
        require_at_jwt=require_at_jwt,
        client_id=client_id,
    )


TRUSTS = [
    _trust(),
    _trust(leeway=30, require_at_jwt=True),
    _trust(client_id=lambda claims: claims.get("appid")),  # an issuer's own client-id claim (any type)
]


def _outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except InvalidToken as exc:
        return ("refused", exc.reason, exc.claim, exc.description)


def _table_claims(trust, claims, now):
    for rule in CLAIM_RULES:
        rule.check(trust, claims, now)
    return float(claims["exp"]), float(claims.get("nbf", -math.inf)), trust.client_id(claims)


def _table_header(trust, header):
    for rule in HEADER_RULES:
        rule.check(trust, header, 0.0)
    return header["alg"], header.get("kid")


BAD_VALUES = [
    None, True, False, 0, -1, 1.5, NOW, NOW - 1, NOW + 1, NOW + 30, NOW - 30, NOW + 31, NOW - 31,
    253402300799, 253402300800, 1e30, math.nan, math.inf, -math.inf, "", " ", "x", "1800000000",
    "svc\nforged", "svc\u202egpj", "svc\u2028", "svc-\u00e9", [], ["api://a"], ["api://zz"], [1],
    [{}], ["api://a", 2], [["api://a"]], {}, {"jkt": "t"}, {"jkt": ""}, {"x5t#S256": 1},
    {"other": "x"}, "api://a", "api://b", "svc@clients", "@clients",
]  # fmt: skip
GOOD_CLAIMS = {
    "iss": ISS,
    "sub": "svc-1",
    "aud": "api://a",
    "exp": NOW + 300,
    "iat": NOW - 10,
    "client_id": "svc-1",
    "jti": "j-1",
}
CLAIM_NAMES = ["exp", "iat", "iss", "aud", "sub", "nbf", "client_id", "azp", "jti", "cnf", "appid", "status"]


def _claim_corpus():
    yield dict(GOOD_CLAIMS)
    yield {k: v for k, v in GOOD_CLAIMS.items() if k not in ("client_id", "jti")}
    for name in CLAIM_NAMES:  # one claim removed, or set to each bad value
        yield {k: v for k, v in GOOD_CLAIMS.items() if k != name}
        for value in BAD_VALUES:
            yield {**GOOD_CLAIMS, name: value}
    # two claims wrong at once: the first failure in table order must win
    for (a, b), (va, vb) in itertools.product(
        itertools.combinations(CLAIM_NAMES[:10], 2), itertools.product(BAD_VALUES[::5], BAD_VALUES[1::6])
    ):
        yield {**GOOD_CLAIMS, a: va, b: vb}


@pytest.mark.parametrize("trust", TRUSTS, ids=["default", "leeway-at+jwt", "appid"])
def test_fused_claim_checks_give_the_tables_answer_on_every_corpus_claim_set(trust):
    seen = {"ok": 0, "refused": 0}
    for claims in _claim_corpus():
        for now in (NOW, NOW + 290, NOW + 330):
            fused, table = _outcome(check_claims, trust, claims, now), _outcome(_table_claims, trust, claims, now)
            assert fused == table, (claims, now)
            seen[fused[0]] += 1
    assert seen["ok"] > 100 and seen["refused"] > 1000  # the corpus exercises both answers


HEADER_VALUES = [None, 1, "", "RS256", "ES256", "HS256", "none", "PS256", "at+jwt", "AT+JWT", "application/at+jwt",
                 "jwt", "JWT", "logout+jwt", "JOSE", [], ["exp"], [1], "k1", {"a": 1}, True]  # fmt: skip


def _header_corpus():
    good = {"alg": "RS256", "typ": "at+jwt", "kid": "k1"}
    yield dict(good)
    for name in ("alg", "typ", "kid", "crit"):
        yield {k: v for k, v in good.items() if k != name}
        for value in HEADER_VALUES:
            yield {**good, name: value}
    for va, vt, vk in itertools.product(HEADER_VALUES[::2], HEADER_VALUES[::3], HEADER_VALUES[::4]):
        yield {"alg": va, "typ": vt, "kid": vk}
        yield {"alg": va, "typ": vt, "kid": vk, "crit": ["b64"]}


@pytest.mark.parametrize("trust", TRUSTS[:2], ids=["default", "at+jwt-required"])
def test_fused_header_checks_give_the_tables_answer_on_every_corpus_header(trust):
    seen = {"ok": 0, "refused": 0}
    for header in _header_corpus():
        fused, table = _outcome(check_header, trust, header), _outcome(_table_header, trust, header)
        assert fused == table, header
        seen[fused[0]] += 1
    assert seen["ok"] > 5 and seen["refused"] > 50


def test_a_plain_valid_token_takes_the_fused_path_without_running_the_table(monkeypatch):
    # The fast path must really be fast: a valid token never runs the table's ~19 calls.
    def boom(*args):
        raise AssertionError("the table ran for a plainly valid token")

    monkeypatch.setattr(token_rules, "CLAIM_RULES", (token_rules.Rule("boom", boom, "x"),))
    monkeypatch.setattr(token_rules, "HEADER_RULES", (token_rules.Rule("boom", boom, "x"),))
    trust = TRUSTS[0]
    assert check_claims(trust, dict(GOOD_CLAIMS), NOW) == (NOW + 300, -math.inf, "svc-1")
    bound = {**GOOD_CLAIMS, "cnf": {"jkt": "abc"}, "nbf": NOW - 5, "aud": ["api://x", "api://b"]}
    assert check_claims(trust, bound, NOW) == (NOW + 300, NOW - 5, "svc-1")
    assert check_header(trust, {"alg": "ES256", "typ": "at+jwt", "kid": "k1"}) == ("ES256", "k1")
