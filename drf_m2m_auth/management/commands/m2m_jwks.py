"""m2m_jwks: each issuer's signing keys as this service sees them: where from, how old, when next fetched.

Without ``--refresh`` the keys are loaded the way a worker loads them (the shared cache if it holds
a fresh copy, else the network); with ``--refresh`` they are fetched from the issuer now and, when the
configured cache is shared between processes (not LocMem or Dummy), written to it, so every
worker picks them up at its next refresh; otherwise only this process has refreshed, and the
output says so.

Exit status: 0 every issuer has keys and no fetch failed, 1 otherwise, 2 usage error.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from drf_m2m_auth.errors import KeysUnavailable
from drf_m2m_auth.shared import get_shared_cache
from drf_m2m_auth.verifier import get_verifier


def refresh_scope() -> tuple[str, str]:
    """(``"fleet"`` | ``"this process"``, a sentence): what a --refresh reached, given the cache."""
    shared = get_shared_cache()
    if shared is not None and shared.cross_process:
        return "fleet", (
            f"refreshed for the fleet: the keys are in the shared cache {shared.alias!r}; "
            "every worker picks them up at its next refresh"
        )
    why = (
        "no shared cache is configured (CACHE is None)"
        if shared is None
        else (f"the cache {shared.alias!r} is private to each process")
    )
    return (
        "this process",
        f"refreshed this process only, because {why}; other workers keep their keys until they refresh",
    )


def _iso(ts: float) -> str | None:
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).isoformat(timespec="seconds") if ts else None


def describe(source: Any, error: str | None) -> dict[str, Any]:
    now = source.clock()
    keys = source.keys.all if source.keys is not None else []
    return {
        "issuer": source.issuer,
        "jwks_uri": source.jwks_url,
        "jwks_uri_from": "settings" if source.configured_jwks_url else "discovery",
        "source": source.source,  # network | shared cache | none
        "fetched_at": _iso(source.fetched_at),
        "age_s": round(now - source.fetched_at, 1) if source.fetched_at else None,
        "refresh_in_s": round(source.expires_at - now, 1) if source.keys is not None else None,
        "network_fetches": source.fetch_count,
        "discovery_fetches": source.discovery_count,
        "keys": [
            {
                "kid": k.kid,
                "kty": k.kty,
                "crv": k.crv,
                "alg": k.alg,
                "use": k.use,
                "verifies": sorted(k.algorithms),
                "thumbprint": k.thumbprint,
            }
            for k in keys
        ],
        "error": error,
        "ok": bool(keys) and error is None,
    }


class Command(BaseCommand):
    help = (
        "List each configured issuer's signing keys (kid, kty, alg, use), where they came from "
        "(discovery, shared cache, network), their age and time to the next refresh. --refresh fetches "
        "them from the issuer now. Exit status 1 when an issuer has no keys or a fetch failed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--refresh",
            action="store_true",
            help="fetch from the issuer now (and update the shared cache), whatever the TTL",
        )
        parser.add_argument(
            "--issuer",
            action="append",
            default=[],
            metavar="ISSUER",
            help="only this issuer (repeatable); default: every ISSUER",
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args, **opts):
        from drf_m2m_auth.signals import jwks_fetch_failed

        sources = get_verifier().sources
        unknown = [i for i in opts["issuer"] if i not in sources]
        if unknown:
            raise CommandError(
                f"not a configured ISSUER: {', '.join(map(repr, unknown))} "
                f"(configured: {', '.join(map(repr, sources)) or 'none'})"
            )
        if not sources:
            raise CommandError("DRF_M2M_AUTH['ISSUER'] is not set: there are no issuers to fetch keys for")
        failures: dict[str, str] = {}

        def heard(sender: Any, issuer: str = "", url: str = "", error: str = "", **kw: Any) -> None:
            failures[issuer] = f"{error} ({url})" if url and url not in error else error

        reports = []
        jwks_fetch_failed.connect(heard, weak=False, dispatch_uid="m2m_jwks")
        try:
            for issuer, source in sources.items():
                if opts["issuer"] and issuer not in opts["issuer"]:
                    continue
                try:
                    source.refresh_now() if opts["refresh"] else source.refresh_if_due()
                except KeysUnavailable as exc:
                    failures.setdefault(issuer, exc.description)
                reports.append(describe(source, failures.get(issuer)))
        finally:
            jwks_fetch_failed.disconnect(dispatch_uid="m2m_jwks")
        if opts["refresh"]:
            scope, sentence = refresh_scope()
            for report in reports:
                report["refreshed"] = scope
        if opts["json"]:
            self.stdout.write(json.dumps(reports, indent=2))
        else:
            for report in reports:
                self.render(report)
            if opts["refresh"]:
                self.stdout.write(sentence)
        failed = [r["issuer"] for r in reports if not r["ok"]]
        if failed:
            raise CommandError(f"no keys or a failed fetch for: {', '.join(failed)}", returncode=1)

    def render(self, r: dict[str, Any]) -> None:
        out, style = self.stdout, self.style
        out.write(style.MIGRATE_HEADING(f"issuer  {r['issuer']}"))
        out.write(f"  jwks_uri   {r['jwks_uri'] or '(not discovered yet)'} (from {r['jwks_uri_from']})")
        if r["keys"]:
            refresh = round(r["refresh_in_s"])
            when = f"refresh in {refresh} s" if refresh > 0 else f"refresh due {-refresh} s ago"
            out.write(f"  loaded     from {r['source']}, fetched {round(r['age_s'])} s ago ({r['fetched_at']}); {when}")
        out.write(f"  fetches    {r['network_fetches']} JWKS, {r['discovery_fetches']} discovery by this process")
        if r["error"]:
            state = "serving the last good keys" if r["keys"] else "NO KEYS: requests get 503"
            out.write(style.ERROR(f"  FAILED     {r['error']} ({state})"))
        if not r["keys"]:
            out.write(style.ERROR("  keys       none usable"))
            return
        rows = [("kid", "kty", "crv", "alg", "use", "verifies", "thumbprint")]
        rows += [
            (
                k["kid"] or "(none)",
                k["kty"],
                k["crv"] or "-",
                k["alg"] or "-",
                k["use"] or "-",
                ",".join(k["verifies"]),
                k["thumbprint"][:16],
            )
            for k in r["keys"]
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        out.write(f"  keys       {len(r['keys'])}")
        for row in rows:
            out.write("    " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("")
