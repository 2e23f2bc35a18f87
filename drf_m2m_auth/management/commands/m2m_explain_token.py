"""m2m_explain_token: why is this token accepted or rejected? Every check, one line each, in words.

A thin renderer: ``drf_m2m_auth.diagnostics`` decodes the token without trusting it and runs every
header and claim rule of the verifier's own tables (token_rules.HEADER_RULES / CLAIM_RULES), the
issuer's JWKSource and the signature check, reporting every problem, not only the first. Last, the
token goes through ``M2MJWTAuthentication`` exactly as a request would: that verdict is the truth,
and a rejection no line predicted is reported as such.

Exit status: 0 accepted, 1 rejected (or no keys obtainable), 2 usage error. The token is never
printed whole: only its first characters and a SHA-256 prefix.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from drf_m2m_auth.conf import m2m_settings
from drf_m2m_auth.diagnostics import Diagnosis, diagnose
from drf_m2m_auth.errors import M2MAuthError
from drf_m2m_auth.management.commands.m2m_jwks import chosen_trusts
from drf_m2m_auth.verifier import get_verifier

STATUS_CODES = {"invalid_token": 401, "invalid_request": 400, "temporarily_unavailable": 503}


def fingerprint(raw: str) -> str:
    """Enough to recognise a token in a ticket, never enough to use it."""
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{raw[: min(12, len(raw) // 4)]}… (sha256 {digest}, {len(raw)} chars)"


def verdict(self: Diagnosis) -> dict[str, Any]:
    """The real request path (authentication and revocation) judges the token; added as a last step."""
    from drf_m2m_auth import revocation
    from drf_m2m_auth.authentication import M2MJWTAuthentication

    auth = M2MJWTAuthentication()
    try:
        client, token = auth.validate(self.raw)
        auth.check_client_state(token)
    except M2MAuthError as exc:
        verdict = {
            "accepted": False,
            "status": STATUS_CODES.get(exc.error, exc.status_code),
            "error": exc.error,
            "reason": exc.reason,
            "description": exc.description,
        }
        predicted = [s for s in self.steps if s["status"] == "FAIL"]
        if exc.reason.startswith(("client_", "token_", "jti_")):
            self.add("client", "FAIL", exc.description, exc.reason)
        elif not predicted or predicted[0]["reason"] != exc.reason:
            self.add(
                "verifier",
                "FAIL",
                f"{exc.description} (no line above predicted {exc.reason}: please report this)",
                exc.reason,
            )
        return verdict
    except Exception as exc:  # e.g. no database: the token itself was judged already
        self.add("client", "SKIP", f"revocation state unavailable: {type(exc).__name__}")
        return {"accepted": None, "status": None, "error": None, "reason": "unknown", "description": str(exc)}
    granted = revocation.resources_for(token.issuer, client.client_id)
    detail = (
        "not registered (UNREGISTERED_CLIENTS allows it; HasResourceGrant denies it)"
        if granted is None
        else f"active, token not revoked; grants: {', '.join(sorted(granted)) or 'none'}"
    )
    self.add("client", "PASS", f"{client.client_id!r} {detail}")
    return {
        "accepted": True,
        "status": 200,
        "error": None,
        "reason": "accepted",
        "client_id": client.client_id,
        "issuer": client.issuer,
        "scopes": sorted(token.scopes),
        "description": "The token is accepted.",
    }


class Command(BaseCommand):
    help = (
        "Explain why an access token is accepted or rejected: decode it without trusting it, then run "
        "every check against the live settings and keys, one line each. Pass the token, or '-' to read "
        "it from stdin (keeps it out of shell history). The token is never printed whole."
    )

    def add_arguments(self, parser):
        parser.add_argument("token", help="the JWT, 'Bearer <jwt>', or '-' for stdin")
        parser.add_argument(
            "--issuer",
            metavar="ISSUER",
            help="the issuer the token should come from (an alias names its entry): its rules explain the "
            "token; required when several issuers are trusted",
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args, **opts):
        from drf_m2m_auth.tokens import TokenVerifier

        everyone = verifier = get_verifier()
        (trust,) = chosen_trusts(verifier, [opts["issuer"]] if opts["issuer"] else [])
        given = opts["token"]
        raw = (sys.stdin.read() if given == "-" else given).strip()
        if raw[:7].lower() == "bearer ":
            raw = raw[7:].strip()
        if not raw:
            raise CommandError("no token given (pass it as an argument, or '-' and pipe it in)")
        if len(verifier.trust_list) > 1:  # explain against the named issuer only, with its own JWKSource
            verifier = TokenVerifier(trusts=[trust], max_token_bytes=verifier.max_token_bytes, clock=verifier.clock)
        exp = diagnose(verifier, raw)
        iss = (exp.claims or {}).get("iss")
        if type(iss) is str and iss not in trust.issuers and iss in everyone.trusts:
            # Another trusted issuer's token: its own rules judge it, not the named issuer's.
            other = everyone.trusts[iss].issuer
            result = {
                "accepted": False,
                "status": 401,
                "error": "invalid_token",
                "reason": "bad_issuer",
                "description": f"The token is issuer {other!r}'s, not {trust.issuer!r}'s: run with --issuer {other}.",
            }
        else:
            result = verdict(exp)
        if opts["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "token": fingerprint(raw),
                        "issuers": m2m_settings.issuers,
                        "issuer": trust.issuer,
                        "header": exp.header,
                        "claims": exp.claims,
                        "steps": exp.steps,
                        "verdict": result,
                    },
                    indent=2,
                    sort_keys=True,
                    default=str,
                )
            )
        else:
            self.render(raw, exp, result)
        if not result["accepted"]:
            raise CommandError(f"token not accepted ({result['reason']})", returncode=1)

    def render(self, raw: str, exp: Diagnosis, verdict: dict[str, Any]) -> None:
        out, style = self.stdout, self.style
        out.write(f"token     {fingerprint(raw)}")
        if exp.header is not None:
            out.write(f"header    {json.dumps(exp.header, sort_keys=True)}")
            out.write(f"claims    {json.dumps(exp.claims, sort_keys=True)}")
        out.write("")
        paint = {"PASS": style.SUCCESS, "FAIL": style.ERROR, "WARN": style.WARNING, "SKIP": style.NOTICE}
        for step in exp.steps:
            reason = f" [{step['reason']}]" if step["status"] == "FAIL" else ""
            out.write(f"{paint[step['status']](step['status'])}  {step['check']:<10} {step['detail']}{reason}")
        out.write("")
        if verdict["accepted"]:
            out.write(
                style.SUCCESS(
                    f"verdict   ACCEPTED: client {verdict['client_id']!r}, "
                    f"scopes {' '.join(verdict['scopes']) or '(none)'}, issuer {verdict['issuer']!r}"
                )
            )
        elif verdict["accepted"] is None:
            out.write(style.WARNING(f"verdict   UNKNOWN: {verdict['description']}"))
        else:
            out.write(
                style.ERROR(
                    f"verdict   REJECTED: {verdict['status']} {verdict['error']} "
                    f"[{verdict['reason']}] {verdict['description']}"
                )
            )
