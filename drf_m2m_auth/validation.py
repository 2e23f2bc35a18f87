"""Validators for the settings table in conf.py: each checks one value and returns it converted.

Pure: no Django. A validator is ``fn(value, ctx) -> converted value`` and raises :class:`Invalid`
(message, hint) when the value cannot be used; ``ctx`` gives the other raw values (for rules that
span two keys) and the names of the configured cache aliases.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ALLOWED_ALGORITHMS",
    "Context",
    "Invalid",
    "as_list",
    "did_you_mean",
]

ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}
)
# CACHE_KEY_PREFIX: the first part of every shared-cache key. ':' separates a key's parts, and
# memcached refuses spaces and control characters, so only these (1-64 of them) are allowed.
PREFIX_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
HEADER_NAME_RE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~\-]+")  # an RFC 9110 token


class Invalid(Exception):
    """A setting's value cannot be used: ``message`` says why (it never repeats a secret)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass(frozen=True)
class Context:
    """What a validator may look at besides its own value."""

    raw: Mapping[str, Any] = field(default_factory=dict)  # every key, defaults filled in
    cache_aliases: frozenset[str] = frozenset()
    database_aliases: frozenset[str] | None = None  # None: not known here, not checked


Validator = Callable[[Any, Context], Any]


def as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


def did_you_mean(value: Any, choices: list[str] | tuple[str, ...]) -> str:
    """`` Did you mean 'x'?`` for the closest choice, or '' when nothing is close."""
    if not isinstance(value, str):
        return ""
    folded = {c.lower(): c for c in choices}
    match = folded.get(value.strip().lower()) or next(
        iter(difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)), None
    )
    return f" Did you mean {match!r}?" if match else ""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def number(*, positive: bool = False, integer: bool = False, optional: bool = False) -> Validator:
    """A finite number >= 0 (> 0 when ``positive``); an int when ``integer``; None allowed if ``optional``."""
    what = "a positive" if positive else "a non-negative"
    what += " whole number" if integer else " number"
    what += " or None (off)" if optional else ""

    def check(value: Any, ctx: Context) -> Any:
        if value is None and optional:
            return None
        ok = _is_number(value) and (value > 0 if positive else value >= 0)
        if ok and integer and value != int(value):
            ok = False
        if not ok:
            raise Invalid(f"must be {what}, not {value!r}")
        return int(value) if integer else float(value)

    return check


def boolean(value: Any, ctx: Context) -> bool:
    # "false" is a truthy string: a bool setting accepts True and False only.
    if type(value) is not bool:
        raise Invalid(f"must be True or False, not {value!r}")
    return value


def choice(*choices: str) -> Validator:
    def check(value: Any, ctx: Context) -> str:
        if type(value) is not str or value not in choices:
            names = ", ".join(repr(c) for c in choices)
            raise Invalid(f"must be one of {names}, not {value!r}.{did_you_mean(value, choices)}")
        return value

    return check


def strings(*, required: bool = True, what: str = "a non-empty string or list of strings") -> Validator:
    """A string or a list of non-empty strings; returned as given (a tuple becomes a list)."""

    def check(value: Any, ctx: Context) -> Any:
        items = as_list(value)
        if (required and not items) or not all(isinstance(v, str) and v for v in items):
            raise Invalid(f"must be {what}, not {value!r}")
        return list(value) if isinstance(value, (list, tuple, set, frozenset)) else value

    return check


def string_list(*, required: bool = True, what: str = "a list of non-empty strings") -> Validator:
    inner = strings(required=required, what=what)

    def check(value: Any, ctx: Context) -> list[str]:
        return as_list(inner(value, ctx))

    return check


def algorithms(value: Any, ctx: Context) -> list[str]:
    algs = as_list(value)
    bad = [a for a in algs if not isinstance(a, str) or a not in ALLOWED_ALGORITHMS]
    if not algs or bad:
        raise Invalid(
            f"holds unsupported or symmetric algorithm(s): {bad or 'none given'}",
            "Asymmetric algorithms only, e.g. ['RS256'] or ['ES256']; 'none' and HS* are refused (RFC 8725 3.1, 3.2).",
        )
    return algs


def realm(value: Any, ctx: Context) -> str:
    if type(value) is not str or not value or not all(" " <= c <= "~" for c in value):
        raise Invalid(f"must be a non-empty string of printable ASCII characters, not {value!r}")
    return value


def cache_key_prefix(value: Any, ctx: Context) -> str:
    if type(value) is not str or not PREFIX_RE.fullmatch(value):
        raise Invalid(
            f"must be 1-64 characters from A-Z a-z 0-9 _ . - (no ':' or space), not {value!r}",
            "For example 'drf_m2m_auth.prod' and 'drf_m2m_auth.staging' for two deployments on one Redis.",
        )
    return value


def cache_alias(value: Any, ctx: Context) -> str | None:
    if value is None:
        return None
    if type(value) is not str or value not in ctx.cache_aliases:
        raise Invalid(
            f"names cache alias {value!r}, which is not in CACHES.{did_you_mean(value, sorted(ctx.cache_aliases))}"
        )
    return value


def database_alias(value: Any, ctx: Context) -> str:
    if type(value) is not str or not value:
        raise Invalid(f"must name a database alias, not {value!r}")
    if ctx.database_aliases is not None and value not in ctx.database_aliases:
        choices = sorted(ctx.database_aliases)
        raise Invalid(f"names database alias {value!r}, which is not in DATABASES.{did_you_mean(value, choices)}")
    return value


def api_identifier(value: Any, ctx: Context) -> str | None:
    """None (the single audience, resolved by conf.validate_full) or the API's identifier."""
    if value is None:
        return None
    if (
        type(value) is not str
        or not value
        or len(value) > 255
        or value != value.strip()
        or not all(c.isprintable() for c in value)
    ):
        raise Invalid(
            f"must be None or the API's identifier (1-255 printable characters, no surrounding spaces), not {value!r}",
            "Usually your API's audience, e.g. 'https://orders.example.com'.",
        )
    return value


def issuers(value: Any, ctx: Context) -> Any:
    """None, or a list of dicts; each entry's keys are checked by issuers.build_policies (conf.validate)."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(e, Mapping) for e in value):
        raise Invalid(
            f"must be a non-empty list of dicts, one per trusted issuer, not {value!r}",
            'For example [{"issuer": "https://tenant.auth0.com/", "audience": "https://api.example.com"}].',
        )
    return [dict(e) for e in value]


def status_view_access(value: Any, ctx: Context) -> str:
    """``"loopback"``, ``"public"`` or ``"scope:<scope>"`` (one scope token, RFC 6749 3.3)."""
    if value in ("loopback", "public"):
        return value
    if type(value) is str and value.startswith("scope:"):
        scope = value[len("scope:") :]
        if scope and all("!" <= c <= "~" and c not in '"\\' for c in scope):
            return value
    raise Invalid(
        f"must be 'loopback', 'public' or 'scope:<scope>', not {value!r}",
        "For example 'scope:m2m:status' to let a monitoring client with that scope read it.",
    )


def status_list_hosts(value: Any, ctx: Context) -> Any:
    """None (each issuer's own host), a list of hosts, or a dict issuer -> list of hosts."""
    if value is None:
        return None
    lists = value.values() if isinstance(value, Mapping) else [value]
    keys_ok = all(isinstance(k, str) and k for k in value) if isinstance(value, Mapping) else True
    if not keys_ok or not all(
        isinstance(hosts, (list, tuple)) and all(isinstance(h, str) and h and "/" not in h for h in hosts)
        for hosts in lists
    ):
        raise Invalid(
            f"must be None, a list of host names, or a dict {{issuer: [host, ...]}}, not {value!r}",
            "For example ['issuer.example.com'].",
        )
    return {k: list(v) for k, v in value.items()} if isinstance(value, Mapping) else list(value)


def trusted_proxies(value: Any, ctx: Context) -> list[str]:
    items = as_list(value)
    for address in items:
        try:
            ipaddress.ip_network(str(address), strict=False)
        except ValueError:
            raise Invalid(f"holds {address!r}, which is not an IP address or network") from None
    return [str(a) for a in items]


def header_name(value: Any, ctx: Context) -> str | None:
    if value is None:
        return None
    if type(value) is not str or not HEADER_NAME_RE.fullmatch(value):
        raise Invalid(f"must be a header name such as 'X-SSL-Client-Cert', not {value!r}")
    return value


def url_problem(url: Any, insecure_hosts: list) -> str | None:
    """Why keys cannot be fetched from ``url``: the fetcher's own rule, so the check and the fetch agree."""
    from .errors import JWKSError
    from .fetch import check_url

    if not isinstance(url, str) or not url:
        return "is not a URL string"
    try:
        check_url(url, insecure_hosts)
    except (JWKSError, ValueError) as exc:
        return str(exc)
    return None


def jwks_url(value: Any, ctx: Context) -> Any:
    """None (discovery from each ISSUER), one URL, or {issuer: url}; every URL fetchable."""
    insecure = [h for h in as_list(ctx.raw.get("INSECURE_JWKS_HOSTS")) if isinstance(h, str)]
    if value is None:
        if ctx.raw.get("ISSUERS") is not None:
            return None  # each ISSUERS entry's URL is checked by conf.validate
        for issuer in as_list(ctx.raw.get("ISSUER")):
            problem = url_problem(issuer, insecure) if isinstance(issuer, str) and issuer else None
            if problem:
                raise Invalid(
                    f"is None, so keys are found by OIDC discovery from ISSUER, but ISSUER {problem}",
                    "Give an https issuer, or set JWKS_URL explicitly.",
                )
        return None
    if isinstance(value, dict):
        missing = [i for i in as_list(ctx.raw.get("ISSUER")) if i not in value]
        if missing:
            raise Invalid(f"has no URL for issuer(s) {missing}")
        urls = list(value.values())
    else:
        urls = [value]
    for url in urls:
        problem = url_problem(url, insecure)
        if problem:
            raise Invalid(problem, "JWKS must be fetched over https (loopback hosts and INSECURE_JWKS_HOSTS excepted).")
    return dict(value) if isinstance(value, dict) else value
