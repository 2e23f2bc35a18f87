"""The header and claim rules of an access token, as ordered tables (RFC 8725 / RFC 9068 / RFC 7519).

Each :class:`Rule` judges one thing by the token's own issuer's rules (an ``IssuerTrust``). The
verifier (tokens.py) runs them in order and stops at the first failure; diagnostics.py runs them all
for the explainer. Pure: no Django.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import InvalidToken
from .jose import MAX_NUMERIC_DATE, is_numeric_date
from .trust import ACCESS_TOKEN_TYPES, IssuerTrust

__all__ = [
    "Rule",
    "HEADER_RULES",
    "CLAIM_RULES",
    "check_header",
    "check_claims",
    "REQUIRED_CLAIMS",
    "UNDERSTOOD_CRIT",
    "CONFIRMATION_METHODS",
]

# Header parameters whose meaning we implement; anything listed in "crit" must be one of these.
UNDERSTOOD_CRIT: frozenset[str] = frozenset()
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")


def _fail(description: str, reason: str, claim: str | None = None) -> InvalidToken:
    return InvalidToken(description, reason=reason, claim=claim)


# --- the rules: each check(verifier, header_or_claims, now) raises InvalidToken or returns None ---------


@dataclass(frozen=True)
class Rule:
    """One header or claim rule: ``check`` raises InvalidToken (with ``reason``) or returns None.

    ``check(trust, header_or_claims, now)`` judges by the token's own issuer's rules (IssuerTrust).

    A rule only judges what it names: when the member it reads is absent or of the wrong type and
    another rule owns that failure, it passes, so diagnostics can run every rule and report each
    problem once.
    """

    name: str
    check: Callable[[IssuerTrust, dict[str, Any], float], None]
    reason: str


def _alg_allowed(v: IssuerTrust, header: dict[str, Any], now: float) -> None:
    alg = header.get("alg")
    # RFC 8725 3.1: an allow-list; "none" and HS* can never be in it (see jose.ALG_KEY_TYPES).
    if type(alg) is not str or alg not in v.algorithms:
        raise _fail("The token's signing algorithm is not allowed.", "alg_not_allowed", "alg")


def _crit_understood(v: IssuerTrust, header: dict[str, Any], now: float) -> None:
    if "crit" in header:
        crit = header["crit"]
        if type(crit) is not list or not crit or any(type(c) is not str or c not in UNDERSTOOD_CRIT for c in crit):
            raise _fail(
                "The token has critical header parameters this API does not understand.", "crit_unsupported", "crit"
            )


def _typ_accepted(v: IssuerTrust, header: dict[str, Any], now: float) -> None:
    typ = header.get("typ")
    if typ is None:
        if v.accepted_types is ACCESS_TOKEN_TYPES:
            raise _fail("The token must be typed at+jwt (RFC 9068).", "bad_typ", "typ")
    elif type(typ) is not str or typ.lower() not in v.accepted_types:
        # RFC 8725 3.11: a logout+jwt or id_token-like JWT must not pass as an access token.
        raise _fail("The token's typ is not an access token type.", "bad_typ", "typ")


def _kid_string(v: IssuerTrust, header: dict[str, Any], now: float) -> None:
    kid = header.get("kid")
    if kid is not None and type(kid) is not str:
        raise _fail("The token's kid is not a string.", "malformed", "kid")
    # jku, x5u, jwk and x5c are deliberately never read: keys come only from the configured JWKS.


HEADER_RULES: tuple[Rule, ...] = (
    Rule("alg", _alg_allowed, "alg_not_allowed"),
    Rule("crit", _crit_understood, "crit_unsupported"),
    Rule("typ", _typ_accepted, "bad_typ"),
    Rule("kid", _kid_string, "malformed"),
)


def _required(name: str) -> Callable[[IssuerTrust, dict[str, Any], float], None]:
    def check(v: IssuerTrust, claims: dict[str, Any], now: float) -> None:
        if name not in claims:
            raise _fail(f"The token has no {name} claim.", "missing_claim", name)

    return check


def _numeric(name: str) -> Callable[[IssuerTrust, dict[str, Any], float], None]:
    def check(v: IssuerTrust, claims: dict[str, Any], now: float) -> None:
        # bool is an int in Python but not a NumericDate; NaN, inf and 1e30 are not dates either.
        if name in claims and not is_numeric_date(claims[name]):
            raise _fail(f"The {name} claim is not a valid NumericDate.", "bad_claim", name)

    return check


def _date(claims: dict[str, Any], name: str) -> float | None:
    value: Any = claims.get(name)
    return float(value) if is_numeric_date(value) else None


def _not_expired(v: IssuerTrust, claims: dict[str, Any], now: float) -> None:
    exp = _date(claims, "exp")
    if exp is not None and now >= exp + v.leeway:
        raise _fail("The token has expired.", "expired", "exp")


def _not_issued_in_future(v: IssuerTrust, claims: dict[str, Any], now: float) -> None:
    iat = _date(claims, "iat")
    if iat is not None and iat > now + v.leeway:
        raise _fail("The token was issued in the future (check clock skew / LEEWAY).", "iat_in_future", "iat")


def _valid_yet(v: IssuerTrust, claims: dict[str, Any], now: float) -> None:
    nbf = _date(claims, "nbf")
    if nbf is not None and nbf > now + v.leeway:
        raise _fail("The token is not valid yet.", "not_yet_valid", "nbf")


def _audience(v: IssuerTrust, claims: dict[str, Any], now: float) -> None:
    if "aud" not in claims:
        return
    aud = claims["aud"]
    if type(aud) is str:
        ok = aud in v.audiences
    elif type(aud) is list and aud and all(type(a) is str for a in aud):
        ok = not v.audiences.isdisjoint(aud)
    else:
        ok = False
    if not ok:
        raise _fail("The token is not meant for this API (aud).", "bad_audience", "aud")


def _subject(v: IssuerTrust, claims: dict[str, Any], now: float) -> None:
    if "sub" in claims and (type(claims["sub"]) is not str or not claims["sub"].strip()):
        raise _fail("The token's sub is not a non-empty string.", "bad_claim", "sub")


def _string(name: str) -> Callable[[IssuerTrust, dict[str, Any], float], None]:
    def check(v: IssuerTrust, claims: dict[str, Any], now: float) -> None:
        if name in claims and type(claims[name]) is not str:
            raise _fail(f"The token's {name} is not a string.", "bad_claim", name)

    return check


CONFIRMATION_METHODS = ("jkt", "x5t#S256")  # RFC 9449 6.1, RFC 8705 3.1


def _confirmation(v: IssuerTrust, claims: dict[str, Any], now: float) -> None:
    if "cnf" not in claims:
        return
    cnf = claims["cnf"]
    # RFC 7800 3.1: a bound token whose binding cannot be checked must not pass as a bearer token.
    if type(cnf) is not dict or not any(m in cnf for m in CONFIRMATION_METHODS):
        raise _fail("The token's cnf has no confirmation method this API can check (jkt, x5t#S256).", "bad_cnf", "cnf")
    for method in CONFIRMATION_METHODS:
        if method in cnf and (type(cnf[method]) is not str or not cnf[method]):
            raise _fail(f"The token's cnf {method} is not a string.", "bad_cnf", "cnf")


_UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp"})


def _client_id_printable(v: IssuerTrust, claims: dict[str, Any], now: float) -> None:
    # A client id names grants, revocations and log lines: a newline can forge an audit line, a
    # bidi control can make one id look like another. Refuse control, format and line/paragraph
    # separator characters (Cc, Cf, Zl, Zp) outright.
    client_id = v.client_id(claims)
    if type(client_id) is not str:
        return
    if client_id and not client_id.isprintable() and any(unicodedata.category(c) in _UNSAFE for c in client_id):
        raise _fail("The token's client id contains control or format characters.", "invalid_client_id")


CLAIM_RULES: tuple[Rule, ...] = (
    *(Rule(f"{name} present", _required(name), "missing_claim") for name in REQUIRED_CLAIMS),
    Rule("exp is a NumericDate", _numeric("exp"), "bad_claim"),
    Rule("iat is a NumericDate", _numeric("iat"), "bad_claim"),
    Rule("exp not passed", _not_expired, "expired"),
    Rule("iat not in the future", _not_issued_in_future, "iat_in_future"),
    Rule("nbf is a NumericDate", _numeric("nbf"), "bad_claim"),
    Rule("nbf reached", _valid_yet, "not_yet_valid"),
    Rule("aud names this API", _audience, "bad_audience"),
    Rule("sub is a non-empty string", _subject, "bad_claim"),
    *(Rule(f"{name} is a string", _string(name), "bad_claim") for name in ("client_id", "azp", "jti")),
    Rule("cnf can be checked", _confirmation, "bad_cnf"),
    Rule("client id is printable", _client_id_printable, "invalid_client_id"),
)


# --- the verifier's fused fast path, checked against the tables -------------------------------------
# Running the tables costs ~19 calls per unseen token. The verifier first asks one predicate per
# table whether *every* rule plainly passes; only when it says no does it run the table, which then
# raises the first failure. So the tables alone decide every refusal (and its reason), and the
# fused predicates may only be stricter than the tables, never laxer: tests/test_token_rules_fused.py
# runs both on a corpus of bad headers and claims.


def check_header(v: IssuerTrust, header: dict[str, Any]) -> tuple[str, str | None]:
    """HEADER_RULES in order (the first failure raised), for the verifier. Returns (alg, kid)."""
    alg, typ, kid = header.get("alg"), header.get("typ"), header.get("kid")
    if (
        type(alg) is not str
        or alg not in v.algorithms
        or "crit" in header
        or (typ is None and v.accepted_types is ACCESS_TOKEN_TYPES)
        or (typ is not None and (type(typ) is not str or typ.lower() not in v.accepted_types))
        or (kid is not None and type(kid) is not str)
    ):
        for rule in HEADER_RULES:
            rule.check(v, header, 0.0)
    return header["alg"], header.get("kid")


def _plainly_valid(v: IssuerTrust, claims: dict[str, Any], now: float) -> bool:
    # True only when every rule of CLAIM_RULES passes (cnf and the client-id rule are run after it).
    if "exp" not in claims or "iat" not in claims or "iss" not in claims or "aud" not in claims:
        return False
    exp, iat, sub, aud, leeway = claims["exp"], claims["iat"], claims.get("sub"), claims["aud"], v.leeway
    if type(exp) not in _NUMBER or type(iat) not in _NUMBER or type(sub) is not str or not sub.strip():
        return False
    if not (0 <= iat <= MAX_NUMERIC_DATE and 0 <= exp <= MAX_NUMERIC_DATE):
        return False
    if now >= exp + leeway or iat > now + leeway:
        return False
    if "nbf" in claims:
        nbf = claims["nbf"]
        if type(nbf) not in _NUMBER or not 0 <= nbf <= MAX_NUMERIC_DATE or nbf > now + leeway:
            return False
    if type(aud) is str:
        if aud not in v.audiences:
            return False
    elif type(aud) is not list or not aud or any(type(a) is not str for a in aud) or v.audiences.isdisjoint(aud):
        return False
    for name in ("client_id", "azp", "jti"):
        if name in claims and type(claims[name]) is not str:
            return False
    return True


_NUMBER = (int, float)


def check_claims(v: IssuerTrust, claims: dict[str, Any], now: float) -> tuple[float, float, Any]:
    """CLAIM_RULES in order (the first failure raised), for the verifier. Returns (exp, nbf, client id
    under the issuer's rule: computed once here, for the client-id rule and for the principal)."""
    if _plainly_valid(v, claims, now):
        if "cnf" in claims:
            _confirmation(v, claims, now)  # every rule before it passed: the table's order holds
        client_id = v.client_id(claims)
        if type(client_id) is not str or not client_id or client_id.isprintable():
            return float(claims["exp"]), float(claims.get("nbf", -math.inf)), client_id
    for rule in CLAIM_RULES:
        rule.check(v, claims, now)
    return float(claims["exp"]), float(claims.get("nbf", -math.inf)), v.client_id(claims)
