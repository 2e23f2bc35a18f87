"""What ``m2m_explain_token`` reports, without the rendering: the diagnosis of a token against the
named issuer's rules (diagnostics.py, pure) and the request path's own verdict on it.

The verdict is the truth: the token goes through ``M2MJWTAuthentication.validate`` and the
revocation check exactly as a request's would, and a rejection no diagnostic line predicted is
reported as such ("please report this"). The raw token is never returned or shown whole.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .diagnostics import Diagnosis, diagnose
from .errors import M2MAuthError

__all__ = ["STATUS_CODES", "fingerprint", "explain", "verdict"]

STATUS_CODES = {"invalid_token": 401, "invalid_request": 400, "temporarily_unavailable": 503}


def fingerprint(raw: str) -> str:
    """Enough to recognise a token in a ticket, never enough to use it."""
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{raw[: min(12, len(raw) // 4)]}… (sha256 {digest}, {len(raw)} chars)"


def explain(everyone: Any, trust: Any, raw: str) -> tuple[Diagnosis, dict[str, Any]]:
    """(diagnosis, verdict) of ``raw`` under ``trust`` (one of ``everyone.trust_list``: the
    process's TokenVerifier). Several issuers trusted: only the named one's rules and keys explain."""
    from .tokens import TokenVerifier

    verifier = everyone
    if len(everyone.trust_list) > 1:
        verifier = TokenVerifier(trusts=[trust], max_token_bytes=everyone.max_token_bytes, clock=everyone.clock)
    diagnosis = diagnose(verifier, raw)
    iss = (diagnosis.claims or {}).get("iss")
    if type(iss) is str and iss not in trust.issuers and iss in everyone.trusts:
        # Another trusted issuer's token: its own rules judge it, not the named issuer's.
        other = everyone.trusts[iss].issuer
        return diagnosis, {
            "accepted": False,
            "status": 401,
            "error": "invalid_token",
            "reason": "bad_issuer",
            "description": f"The token is issuer {other!r}'s, not {trust.issuer!r}'s: run with --issuer {other}.",
        }
    return diagnosis, verdict(diagnosis)


def verdict(diagnosis: Diagnosis) -> dict[str, Any]:
    """The real request path (authentication and revocation) judges the token; added as a last step."""
    from . import revocation
    from .authentication import M2MJWTAuthentication

    auth = M2MJWTAuthentication()
    try:
        client, token = auth.validate(diagnosis.raw)
        auth.check_client_state(token)
    except M2MAuthError as exc:
        predicted = [s for s in diagnosis.steps if s["status"] == "FAIL"]
        if exc.reason.startswith(("client_", "token_", "jti_")):
            diagnosis.add("client", "FAIL", exc.description, exc.reason)
        elif not predicted or predicted[0]["reason"] != exc.reason:
            note = f"{exc.description} (no line above predicted {exc.reason}: please report this)"
            diagnosis.add("verifier", "FAIL", note, exc.reason)
        return {
            "accepted": False,
            "status": STATUS_CODES.get(exc.error, exc.status_code),
            "error": exc.error,
            "reason": exc.reason,
            "description": exc.description,
        }
    except Exception as exc:  # e.g. no database: the token itself was judged already
        diagnosis.add("client", "SKIP", f"revocation state unavailable: {type(exc).__name__}")
        return {"accepted": None, "status": None, "error": None, "reason": "unknown", "description": str(exc)}
    granted = revocation.resources_for(token.issuer, client.client_id)
    detail = (
        "not registered (UNREGISTERED_CLIENTS allows it; HasResourceGrant denies it)"
        if granted is None
        else f"active, token not revoked; grants: {', '.join(sorted(granted)) or 'none'}"
    )
    diagnosis.add("client", "PASS", f"{client.client_id!r} {detail}")
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
