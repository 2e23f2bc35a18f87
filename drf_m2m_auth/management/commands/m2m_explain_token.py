"""m2m_explain_token: why is this token accepted or rejected? Every check, one line each, in words.

A thin renderer of ``drf_m2m_auth.explain``: ``drf_m2m_auth.diagnostics`` decodes the token
without trusting it and runs every header and claim rule of the verifier's own tables
(token_rules.HEADER_RULES / CLAIM_RULES), the issuer's JWKSource and the signature check, reporting
every problem, not only the first. Last, the token goes through ``M2MJWTAuthentication`` exactly as
a request would: that verdict is the truth, and a rejection no line predicted is reported as such.

Exit status: 0 accepted, 1 rejected (or no keys obtainable), 2 usage error. The token is never
printed whole: only its first characters and a SHA-256 prefix.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from drf_m2m_auth.conf import m2m_settings
from drf_m2m_auth.diagnostics import Diagnosis
from drf_m2m_auth.explain import explain, fingerprint
from drf_m2m_auth.management.commands.m2m_jwks import chosen_trusts
from drf_m2m_auth.verifier import get_verifier


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
        verifier = get_verifier()
        (trust,) = chosen_trusts(verifier, [opts["issuer"]] if opts["issuer"] else [])
        given = opts["token"]
        raw = (sys.stdin.read() if given == "-" else given).strip()
        if raw[:7].lower() == "bearer ":
            raw = raw[7:].strip()
        if not raw:
            raise CommandError("no token given (pass it as an argument, or '-' and pipe it in)")
        exp, result = explain(verifier, trust, raw)
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
