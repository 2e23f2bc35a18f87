"""The opt-in network check: each issuer's discovery document and JWKS, fetched now.

``manage.py check --tag drf_m2m_auth_network`` and ``manage.py m2m_jwks --check`` (for CI and
readiness probes) fetch, for every configured issuer, what a worker would fetch at its first
request, with the package's own fetcher (``HTTP_TIMEOUT``, ``JWKS_MAX_BYTES``, https only except
loopback and ``INSECURE_JWKS_HOSTS``, no redirects): the discovery document (unless ``JWKS_URL``
names the key set), whose ``issuer`` must equal ``ISSUER`` exactly, then the JWKS, which must hold
at least one key usable with ``ALGORITHMS``. Nothing is read from or written to the shared cache
and the process's keys are left alone: the check always asks the issuer.

The check never runs without its tag: plain ``check``, ``check --deploy``, ``runserver`` and
``migrate`` do not touch the network.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.checks import Error, register

from .errors import JWKSError

__all__ = ["TAG", "Finding", "IssuerReport", "probe_issuer", "probe_configured", "check_network"]

TAG = "drf_m2m_auth_network"

UNREACHABLE = "drf_m2m_auth.E040"  # no answer: refused, DNS, timeout, 5xx/429
DISCOVERY_INVALID = "drf_m2m_auth.E041"  # discovery answered, but not a usable document
ISSUER_MISMATCH = "drf_m2m_auth.E042"  # the document's issuer is not ISSUER, exactly
JWKS_INVALID = "drf_m2m_auth.E043"  # the JWKS URL answered, but not a key set
JWKS_EMPTY = "drf_m2m_auth.E044"  # {"keys": []}
NO_USABLE_KEY = "drf_m2m_auth.E045"  # keys, but none for ALGORITHMS

_HTTP_STATUS = re.compile(r"^HTTP (\d{3}) from ")


@dataclass(frozen=True)
class Finding:
    """One problem with one issuer; ``unreachable`` when the issuer did not answer usefully now."""

    check_id: str
    message: str
    hint: str
    unreachable: bool = False


@dataclass
class IssuerReport:
    issuer: str
    jwks_url: str | None  # configured, or discovered (None when discovery failed)
    jwks_url_from: str  # "settings" | "discovery"
    algorithms: tuple[str, ...]
    usable_keys: int = 0
    offered: str = ""  # what the JWKS holds, "RS256/RSA, EC/P-256" ("none" when empty)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_url,
            "jwks_uri_from": self.jwks_url_from,
            "algorithms": list(self.algorithms),
            "usable_keys": self.usable_keys,
            "offered": self.offered,
            "ok": self.ok,
            "problems": [
                {"id": f.check_id, "message": f.message, "hint": f.hint, "unreachable": f.unreachable}
                for f in self.findings
            ],
        }


def _is_unreachable(exc: JWKSError) -> bool:
    """No answer worth judging: connection refused, DNS, timeout, or the issuer's own 5xx/429."""
    import requests

    if isinstance(exc.__cause__, requests.RequestException):
        return True
    text = str(exc)
    if text.startswith("timed out reading"):
        return True
    match = _HTTP_STATUS.match(text)
    return match is not None and (match.group(1).startswith("5") or match.group(1) == "429")


def _fetch_failed(exc: JWKSError, what: str, url: str, invalid_id: str) -> Finding:
    if _is_unreachable(exc):
        return Finding(
            UNREACHABLE,
            f"Cannot reach the {what} at {url}: {exc}.",
            "Check the URL, DNS, egress rules and the issuer's status; requests would get 503 until it answers.",
            unreachable=True,
        )
    return Finding(
        invalid_id,
        f"The {what} at {url} is unusable: {exc}.",
        "Configure the final https URL of the document (redirects are never followed).",
    )


def _check_discovery(doc: Any, url: str, issuer: str) -> tuple[str | None, Finding | None]:
    if type(doc) is not dict:
        return None, Finding(DISCOVERY_INVALID, f"The discovery document at {url} is not a JSON object.", "")
    named = doc.get("issuer")
    if named != issuer:
        if type(named) is str and named.rstrip("/") == issuer.rstrip("/"):
            hint = (
                f"Only the trailing slash differs: tokens from this issuer carry iss {named!r}, so set "
                f"ISSUER to exactly {named!r}."
            )
        else:
            hint = "ISSUER must equal the issuer's iss exactly (the discovery document's 'issuer')."
        return None, Finding(
            ISSUER_MISMATCH,
            f"The discovery document at {url} names issuer {named!r}, but ISSUER is {issuer!r}.",
            hint,
        )
    jwks_uri = doc.get("jwks_uri")
    if type(jwks_uri) is not str or not jwks_uri:
        return None, Finding(
            DISCOVERY_INVALID,
            f"The discovery document at {url} has no jwks_uri.",
            "Set JWKS_URL to the issuer's key set.",
        )
    return jwks_uri, None


def probe_issuer(
    issuer: str,
    *,
    jwks_url: str | None,
    algorithms: Iterable[str],
    fetch: Callable[[str], tuple[Any, int | None]],
) -> IssuerReport:
    """Fetch what a worker would fetch for ``issuer`` and say what is wrong, if anything."""
    from .fetch import discovery_url
    from .keys import describe_keys, parse_jwks

    algorithms = tuple(algorithms)
    report = IssuerReport(issuer, jwks_url, "settings" if jwks_url else "discovery", algorithms)
    if jwks_url is None:
        url = discovery_url(issuer)
        try:
            doc, _ = fetch(url)
        except JWKSError as exc:
            report.findings.append(_fetch_failed(exc, "discovery document", url, DISCOVERY_INVALID))
            return report
        report.jwks_url, finding = _check_discovery(doc, url, issuer)
        if finding is not None:
            report.findings.append(finding)
            return report
    url = report.jwks_url or ""
    try:
        doc, _ = fetch(url)
        keyset = parse_jwks(doc, algorithms)
    except JWKSError as exc:
        report.findings.append(_fetch_failed(exc, "JWKS", url, JWKS_INVALID))
        return report
    report.offered = describe_keys(doc)
    report.usable_keys = len(keyset.all)
    if not doc["keys"]:
        report.findings.append(
            Finding(
                JWKS_EMPTY,
                f"The JWKS at {url} holds no keys.",
                "An empty key set is treated as an issuer outage: every request would get 503.",
            )
        )
    elif not keyset.all:
        report.findings.append(
            Finding(
                NO_USABLE_KEY,
                f"The JWKS at {url} has no usable key for ALGORITHMS {list(algorithms)}; it offers {report.offered}.",
                "Set ALGORITHMS to what the issuer signs with (RSA keys under 2048 bits and keys not for "
                "signing are never used); requests would get 503.",
            )
        )
    return report


def probe_configured(issuers: Iterable[str] = ()) -> list[IssuerReport]:
    """One report per configured issuer (or only ``issuers``), from the validated settings.

    Raises ``ConfigurationInvalid`` when the settings are invalid (plain ``check`` names why).
    """
    from .verifier import build_verifier

    verifier = build_verifier()  # a fresh verifier: the process's own keys stay untouched
    # one report per trusted issuer (an alias shares its entry's keys and names that entry)
    wanted = {verifier.trusts[i].issuer if i in verifier.trusts else i for i in issuers}
    return [
        probe_issuer(
            t.issuer, jwks_url=t.source.configured_jwks_url, algorithms=t.source.algorithms, fetch=t.source.fetch
        )
        for t in verifier.trust_list
        if not wanted or t.issuer in wanted
    ]


def _tag_requested() -> bool:
    """True only when Django's check registry runs this check because its tag was asked for.

    The registry calls every check when no tag is given (plain ``check``, runserver) and passes the
    tags to no check; its ``run_checks`` frame holds them. Anything else (no such frame, tags
    None, other tags) means "not asked": the network is never touched by accident.
    """
    try:
        frame = sys._getframe(2)  # 0: here, 1: check_network, 2: CheckRegistry.run_checks
    except ValueError:
        return False
    if frame.f_code.co_name != "run_checks":
        return False
    tags = frame.f_locals.get("tags")
    return tags is not None and TAG in tags


@register(TAG)
def check_network(app_configs: Any = None, **kwargs: Any) -> list:
    """Errors E040-E045 for each issuer whose keys cannot be obtained now (only with the tag)."""
    if not _tag_requested():
        return []
    return network_errors()


def network_errors() -> list:
    from .errors import ConfigurationInvalid

    try:
        reports = probe_configured()
    except ConfigurationInvalid:
        return []  # the settings checks already report each invalid setting
    return [Error(f"{r.issuer}: {f.message}", hint=f.hint or None, id=f.check_id) for r in reports for f in r.findings]
