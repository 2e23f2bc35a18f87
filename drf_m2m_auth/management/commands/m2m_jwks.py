"""m2m_jwks: each issuer's signing keys as this service sees them: where from, how old, when next fetched.

Without ``--refresh`` the keys are loaded the way a worker loads them (the shared cache if it holds
a fresh copy, else the network); with ``--refresh`` they are fetched from the issuer now and, when the
configured cache is shared between processes (not LocMem or Dummy), written to it, so every
worker picks them up at its next refresh; otherwise only this process has refreshed, and the
output says so.

Exit status: 0 every issuer has keys and no fetch failed, 1 otherwise, 2 usage error.

``--check`` (for CI and readiness probes) asks every issuer now, as ``manage.py check --tag
drf_m2m_auth_network`` does, without reading or writing the shared cache: exit 0 when every issuer
has usable keys, 1 when an issuer's answer is wrong (ISSUER differs from the discovery document's
issuer, an empty key set, no key for ALGORITHMS, a document that is not one), 2 when none is wrong
but an issuer cannot be reached (refused, DNS, timeout, 5xx).
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


def chosen_trusts(verifier: Any, wanted: list[str]) -> list[Any]:
    """The trusted issuers ``--issuer`` names (aliases resolve to their entry); CommandError otherwise.

    Optional when one issuer is trusted; required (nothing done without it) when several are.
    """
    trusts = verifier.trust_list
    names = ", ".join(repr(t.issuer) for t in trusts) or "none"
    if not trusts:
        raise CommandError("no issuer is configured (DRF_M2M_AUTH['ISSUERS'], or ISSUER and AUDIENCE)")
    if not wanted:
        if len(trusts) > 1:
            raise CommandError(f"several issuers are trusted: name one with --issuer ({names}); nothing was done")
        return list(trusts)
    unknown = [i for i in wanted if i not in verifier.trusts]
    if unknown:
        raise CommandError(f"not a trusted issuer: {', '.join(map(repr, unknown))} (trusted: {names})")
    return list(dict.fromkeys(verifier.trusts[i] for i in wanted))


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
            help="this issuer (repeatable; an alias names its entry); required when several issuers are trusted",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="fetch each issuer's discovery document and JWKS now (no cache) and exit 0 all usable, "
            "1 a configuration problem, 2 an issuer cannot be reached: for CI and readiness probes",
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args, **opts):
        from drf_m2m_auth.signals import jwks_fetch_failed

        if opts["check"]:
            if opts["refresh"]:
                raise CommandError("--check and --refresh cannot be combined (--check never touches the cache)")
            return self.check_network(opts)  # every trusted issuer unless --issuer names some: a probe
        chosen = chosen_trusts(get_verifier(), opts["issuer"])
        sources = {t.issuer: t.source for t in chosen}  # an alias shares its entry's JWKSource
        failures: dict[str, str] = {}

        def heard(sender: Any, issuer: str = "", url: str = "", error: str = "", **kw: Any) -> None:
            failures[issuer] = f"{error} ({url})" if url and url not in error else error

        reports = []
        jwks_fetch_failed.connect(heard, weak=False, dispatch_uid="m2m_jwks")
        try:
            for issuer, source in sources.items():
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

    def check_network(self, opts: dict[str, Any]) -> None:
        from drf_m2m_auth.errors import ConfigurationInvalid
        from drf_m2m_auth.network_checks import probe_configured

        try:
            reports = probe_configured(opts["issuer"])
        except ConfigurationInvalid as exc:
            raise CommandError(f"the settings are invalid, run manage.py check: {exc}", returncode=1) from exc
        unknown = sorted(i for i in opts["issuer"] if i not in get_verifier().trusts)
        if unknown:
            raise CommandError(f"not a trusted issuer: {', '.join(map(repr, unknown))}")
        if opts["json"]:
            self.stdout.write(json.dumps([r.as_dict() for r in reports], indent=2))
        else:
            for r in reports:
                if r.ok:
                    self.stdout.write(
                        f"ok    {r.issuer}: {r.usable_keys} usable key(s) for {', '.join(r.algorithms)} "
                        f"at {r.jwks_url} (from {r.jwks_url_from})"
                    )
                for f in r.findings:
                    self.stdout.write(self.style.ERROR(f"{f.check_id.split('.')[-1]}  {r.issuer}: {f.message}"))
                    if f.hint:
                        self.stdout.write(f"      {f.hint}")
        findings = [f for r in reports for f in r.findings]
        if any(not f.unreachable for f in findings):
            raise CommandError("an issuer's configuration is wrong (see above)", returncode=1)
        if findings:
            raise CommandError("an issuer cannot be reached now (see above)", returncode=2)

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
