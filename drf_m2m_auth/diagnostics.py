"""Run every rule on one token and report every problem (``m2m_explain_token`` renders this). Pure.

The verifier (tokens.py) stops at the first failing rule; ``diagnose`` runs HEADER_RULES and
CLAIM_RULES all, looks the key up through the issuer's own JWKSource and checks the signature with
jose.py, so the explanation cannot drift from what is enforced. Each step is a dict: check, status
(PASS, FAIL, WARN, SKIP), reason (the verifier's reason code for a FAIL) and detail (words).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .errors import InvalidToken, KeysUnavailable
from .jose import b64url_decode, json_object, verify_signature
from .scopes import scopes_from_claims
from .token_rules import CLAIM_RULES, HEADER_RULES, REQUIRED_CLAIMS

__all__ = ["Diagnosis", "MAX_EXPLAINED", "diagnose"]

SCOPE_LIKE = ("scope", "scp", "permissions", "roles")
MAX_EXPLAINED = 64 * 1024  # beyond this a "token" is not decoded at all


def diagnose(verifier: Any, raw: str) -> Diagnosis:
    """Every check, in the verifier's order, for ``raw`` against ``verifier`` (a TokenVerifier)."""
    diagnosis = Diagnosis(raw, verifier)
    diagnosis.run()
    return diagnosis


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) else None


class Diagnosis:
    """The steps for one raw token; ``header`` and ``claims`` once decoded (never trusted)."""

    def __init__(self, raw: str, verifier: Any):
        self.raw = raw
        self.verifier = verifier
        self.now = self.verifier.clock()
        self.steps: list[dict[str, str]] = []
        self.header: dict[str, Any] | None = None
        self.claims: dict[str, Any] | None = None
        self.signature = b""
        self.fetch_errors: list[str] = []
        # Whose rules apply: the token's issuer's, else (unknown iss) the first trusted issuer's,
        # so the other lines still say something.
        self.trust: Any = None

    def add(self, check: str, status: str, detail: str, reason: str = "") -> None:
        self.steps.append({"check": check, "status": status, "reason": reason, "detail": detail})

    # --- the steps, in the verifier's order ---------------------------------------------------

    def run(self) -> None:
        raw, v = self.raw, self.verifier
        if raw.isascii():
            self.add("charset", "PASS", "ASCII only")
        else:
            self.add(
                "charset", "FAIL", "the token holds non-ASCII characters (copied from a rich-text editor?)", "malformed"
            )
        if len(raw) > v.max_token_bytes:
            self.add("size", "FAIL", f"{len(raw)} chars, more than MAX_TOKEN_BYTES {v.max_token_bytes}", "too_large")
        else:
            self.add("size", "PASS", f"{len(raw)} chars <= MAX_TOKEN_BYTES {v.max_token_bytes}")
        if len(raw) > max(MAX_EXPLAINED, v.max_token_bytes) or not self.decode():
            return
        trust = self.check_issuer()  # the verifier's order: iss picks the issuer before anything else
        self.trust = trust or (v.trust_list[0] if v.trust_list else None)
        alg_ok = self.check_header()
        key = None
        if not alg_ok:
            self.add("key", "SKIP", "not looked up: the header is unusable")
        elif trust is None:
            self.add("key", "SKIP", "not looked up: keys are only fetched for a trusted issuer")
        else:
            key = self.check_key(trust.source)
        if key is None:
            self.add("signature", "SKIP", "not checked: no key to check it with")
        else:
            self.check_signature(key)
        self.check_claims()
        self.check_scopes()

    def decode(self) -> bool:
        parts = self.raw.split(".")
        if len(parts) != 3:
            extra = " (5 is an encrypted JWE: not supported)" if len(parts) == 5 else ""
            self.add("format", "FAIL", f"{len(parts)} dot-separated segments; a signed JWT has 3{extra}", "malformed")
            return False
        decoded: list[Any] = []
        for name, segment, as_json in (
            ("header", parts[0], True),
            ("payload", parts[1], True),
            ("signature", parts[2], False),
        ):
            try:
                data = b64url_decode(segment)
                decoded.append(json_object(data) if as_json else data)
            except (ValueError, TypeError, RecursionError, UnicodeError) as exc:
                what = "a JSON object" if as_json else "base64url"
                self.add("format", "FAIL", f"the {name} segment is not {what}: {exc}", "malformed")
                return False
        self.header, self.claims, self.signature = decoded[0], decoded[1], decoded[2]
        self.add("format", "PASS", "three base64url segments; header and payload are JSON objects")
        return True

    def check_header(self) -> bool:
        v = self.trust
        failed = self._run(HEADER_RULES, self.header or {})
        original = self.header or {}
        alg, typ = original.get("alg"), original.get("typ")
        allowed = sorted(v.algorithms)
        if "alg" in failed:
            hint = (
                " (unsigned and HMAC tokens are never accepted, RFC 8725 3.1)"
                if (isinstance(alg, str) and (alg.lower() == "none" or alg.upper().startswith("HS")))
                else ""
            )
            self.add("alg", "FAIL", f"alg is {alg!r} but ALGORITHMS allows {allowed}{hint}", "alg_not_allowed")
        else:
            self.add("alg", "PASS", f"{alg} is in ALGORITHMS {allowed}")
        if "crit" in failed:
            self.add(
                "crit",
                "FAIL",
                f"crit lists {original.get('crit')!r}: no critical extension is understood here",
                "crit_unsupported",
            )
        if "typ" in failed:
            if typ is None:
                detail = "typ absent but REQUIRE_AT_JWT_TYP demands at+jwt (RFC 9068)"
            else:
                detail = (
                    f"typ is {typ!r}: only JWT, at+jwt and application/at+jwt are access tokens "
                    "(an ID or logout token must not pass as one, RFC 8725 3.11)"
                )
            self.add("typ", "FAIL", detail, "bad_typ")
        else:
            self.add("typ", "PASS", "absent (accepted)" if typ is None else f"{typ!r} is an access token type")
        if "kid" in failed:
            self.add("kid", "FAIL", f"kid is a {type(original.get('kid')).__name__}, not a string", "malformed")
        return "alg" not in failed and "kid" not in failed

    def check_issuer(self) -> Any:
        iss = (self.claims or {}).get("iss")
        trusts = self.verifier.trusts
        configured = list(trusts)
        if type(iss) is str and iss in trusts:
            trust = trusts[iss]
            alias = "" if iss == trust.issuer else f" (an alias of {trust.issuer!r})"
            self.add("iss", "PASS", f"{iss!r} is a trusted issuer{alias}; its own rules apply below")
            return trust
        self.add("iss", "FAIL", self._issuer_words(iss, configured), "bad_issuer")
        return None

    @staticmethod
    def _issuer_words(iss: Any, configured: list[str]) -> str:
        expects = configured[0] if len(configured) == 1 else configured
        if iss is None:
            return f"iss claim absent; ISSUER expects {expects!r}"
        if type(iss) is not str:
            return f"iss is a {type(iss).__name__}, not a string"
        for cfg in configured:
            if iss.rstrip("/") == cfg.rstrip("/"):
                if cfg.endswith("/"):
                    return f"iss {iss!r} has no trailing slash but ISSUER is {cfg!r} (the match is exact)"
                return f"iss {iss!r} has a trailing slash but ISSUER is {cfg!r} (the match is exact)"
            if iss.lower() == cfg.lower():
                return f"iss {iss!r} differs from ISSUER {cfg!r} only in letter case (the match is exact)"
            if iss.split("://", 1)[-1] == cfg.split("://", 1)[-1]:
                return f"iss {iss!r} and ISSUER {cfg!r} differ in scheme (http vs https)"
            if iss.startswith("https://sts.windows.net/") and "login.microsoftonline.com" in cfg:
                return (
                    f"iss {iss!r} is an Entra ID v1 issuer but ISSUER is {cfg!r} (v2): set "
                    "accessTokenAcceptedVersion to 2 in the API's app manifest, or configure the v1 issuer"
                )
            if cfg.startswith("https://sts.windows.net/") and "login.microsoftonline.com" in iss:
                return f"iss {iss!r} is an Entra ID v2 issuer but ISSUER is {cfg!r} (v1)"
        return f"iss is {iss!r} but ISSUER expects {expects!r}"

    def check_key(self, source: Any) -> Any:
        header = self.header or {}
        alg, kid = header["alg"], header.get("kid")
        forward = source.on_event

        def heard(name: str, **details: Any) -> None:
            if name == "jwks_fetch_failed":
                self.fetch_errors.append(f"{details.get('url')}: {details.get('error')}")
            if forward is not None:
                forward(name, **details)

        source.on_event = heard  # an operator's one-off run: hear why a fetch failed, then restore
        try:
            key = source.get_key(kid, alg)
        except KeysUnavailable:
            errors = "; ".join(self.fetch_errors) or "no keys held"
            self.add("key", "FAIL", f"no signing keys obtainable for this issuer ({errors})", "keys_unavailable")
            return None
        except InvalidToken as exc:
            self.add("key", "FAIL", self._key_words(source, kid, alg, exc), exc.reason)
            return None
        finally:
            source.on_event = forward
        self.add("key", "PASS", f"kid {kid!r} ({key.kty}) found in the JWKS {self._provenance(source)}")
        return key

    def _provenance(self, source: Any) -> str:
        age = max(0, round(self.verifier.clock() - source.fetched_at))
        how = "configured" if source.configured_jwks_url else "found by discovery"
        return f"fetched {age} s ago from {source.jwks_url} ({how}, via {source.source})"

    def _key_words(self, source: Any, kid: Any, alg: str, exc: InvalidToken) -> str:
        keys = source.keys
        kids = sorted({k.kid or "(no kid)" for k in keys.all}) if keys else []
        if exc.reason == "kid_required":
            fits = [k for k in keys.all if k.allows(alg)] if keys else []
            return f"the token has no kid and the JWKS holds {len(fits)} keys that fit {alg}: which one is ambiguous"
        if keys is not None and kid in keys.by_kid:
            return f"kid {kid!r} is in the JWKS but its key ({keys.by_kid[kid][0].kty}) cannot verify {alg}"
        return (
            f"kid {kid!r} not in the JWKS {self._provenance(source)}; it holds {kids}. A refetch for an "
            f"unknown kid happens at most every JWKS_REFRESH_COOLDOWN ({source.cooldown:g} s)"
        )

    def check_signature(self, key: Any) -> None:
        header = self.header or {}
        head, payload, _ = self.raw.split(".")
        if not verify_signature(header["alg"], key.public_key, f"{head}.{payload}".encode(), self.signature):
            self.add(
                "signature",
                "FAIL",
                f"does not verify with key {key.kid!r} ({header['alg']}): the token was "
                "altered, or signed by another issuer/tenant using the same kid",
                "bad_signature",
            )
            return
        self.add("signature", "PASS", f"{header['alg']} signature verifies with key {key.kid!r}")

    def check_claims(self) -> None:
        v, now = self.trust, self.now
        failed = self._run(CLAIM_RULES, self.claims or {})
        original, leeway = self.claims or {}, v.leeway
        for name in REQUIRED_CLAIMS:
            if name in failed and failed[name].reason == "missing_claim":
                self.add(name, "FAIL", f"{name} claim absent (required: {', '.join(REQUIRED_CLAIMS)})", "missing_claim")
        # Only read for rules that did not fail as bad_claim / missing_claim, so these are real numbers.
        exp, iat, nbf = (_num(original.get(n)) or 0.0 for n in ("exp", "iat", "nbf"))
        self._line(
            "exp",
            failed,
            lambda: f"expires in {round(exp - now)} s ({_when(exp)})",
            {"expired": lambda: f"expired {round(now - exp)} s ago ({_when(exp)}); LEEWAY is {leeway:g} s"},
        )
        self._line(
            "iat",
            failed,
            lambda: f"issued {round(now - iat)} s ago",
            {
                "iat_in_future": lambda: (
                    f"iat is {iat - now:.1f} s ahead of this server's clock and LEEWAY "
                    f"is {leeway:g} s: the issuer's clock or this one is off (LEEWAY 5 absorbs it)"
                )
            },
        )
        if "nbf" in original:
            self._line(
                "nbf",
                failed,
                lambda: f"valid since {round(now - nbf)} s",
                {"not_yet_valid": lambda: f"nbf is {round(nbf - now)} s in the future; LEEWAY is {leeway:g} s"},
            )
        self._line(
            "aud",
            failed,
            lambda: f"{original['aud']!r} holds one of AUDIENCE {sorted(v.audiences)}",
            {"bad_audience": lambda: self._audience_words(original.get("aud"))},
        )
        self._line("sub", failed, lambda: f"{original['sub']!r} (client_id {v.client_id(original)!r})", {})
        for name in ("client_id", "azp", "jti", "cnf", "client id"):
            if name in failed:
                self.add(name, "FAIL", failed[name].description, failed[name].reason)

    def _run(self, rules: Any, members: dict[str, Any]) -> dict[str, InvalidToken]:
        """Every rule, not just up to the first failure: the first failure per member, by name."""
        failed: dict[str, InvalidToken] = {}
        for rule in rules:
            try:
                rule.check(self.trust, members, self.now)
            except InvalidToken as exc:
                failed.setdefault(exc.claim or "client id", exc)
            except Exception as exc:  # noqa: BLE001 -- a diagnostic must report, never crash
                failed.setdefault(rule.name, InvalidToken(f"{rule.name}: {type(exc).__name__}", reason=rule.reason))
        return failed

    def _line(self, name: str, failed: dict[str, InvalidToken], ok: Any, words: dict[str, Any]) -> None:
        exc = failed.get(name)
        if exc is None:
            self.add(name, "PASS", ok())
        elif exc.reason != "missing_claim":
            self.add(name, "FAIL", words[exc.reason]() if exc.reason in words else exc.description, exc.reason)

    def _audience_words(self, aud: Any) -> str:
        expects = sorted(self.trust.audiences)
        words = (
            f"aud is {aud!r} but AUDIENCE expects {expects[0]!r}"
            if len(expects) == 1
            else f"aud is {aud!r} but AUDIENCE expects one of {expects}"
        )
        values = [a for a in (aud if type(aud) is list else [aud]) if isinstance(a, str)]
        if any(a.rstrip("/") == e.rstrip("/") for a in values for e in expects):
            words += " (they differ only by a trailing slash: the match is exact)"
        elif any(e.startswith("api://") for e in expects) and any("://" not in a for a in values):
            words += (
                " (Entra ID v2 tokens carry the application (client) id as aud, v1 tokens the "
                "api:// Application ID URI)"
            )
        return words

    def check_scopes(self) -> None:
        claims, configured = self.claims or {}, list(self.trust.scope_claims)
        scopes = scopes_from_claims(claims, configured)
        notes = [f"{n} claim {'present' if n in claims else 'absent'}" for n in configured]
        ignored = [n for n in SCOPE_LIKE if n in claims and n not in configured]
        if ignored:
            notes.append(f"{', '.join(ignored)} present but not in SCOPE_CLAIMS: ignored")
        if scopes:
            self.add("scopes", "PASS", f"{' '.join(sorted(scopes))} ({'; '.join(notes)})")
        else:
            self.add("scopes", "WARN", f"no scopes: {', '.join(notes)}; every HasScopes view answers 403")
