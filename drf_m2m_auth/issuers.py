"""Trusted issuers: the ``ISSUERS`` entries (or the one-issuer shorthand) as validated policies.

Pure: no Django. ``build_policies(settings)`` takes the top-level settings as a plain mapping and
returns one frozen :class:`IssuerPolicy` per trusted issuer plus every problem found, each naming
the entry and key, so conf.py can refuse the configuration and ``manage.py check`` can list it all.

Precedence for an entry's key: the entry itself, then its ``preset``, then the top-level setting.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .presets import PRESETS, preset_aliases

__all__ = ["IssuerPolicy", "Problem", "build_policies", "ENTRY_KEYS", "AUTH0_CLIENT_SUFFIX"]

AUTH0_CLIENT_SUFFIX = "@clients"
DEFAULT_CLIENT_ID_CLAIMS = ("client_id", "azp")
UNREGISTERED_MODES = ("allow", "deny")
STATUS_LIST_MODES = ("if_present", "required", "ignore")

# entry key -> the top-level setting it falls back to (None: no fallback)
ENTRY_KEYS: Mapping[str, str | None] = {
    "issuer": None,
    "issuer_aliases": None,
    "audience": None,
    "jwks_url": None,
    "algorithms": "ALGORITHMS",
    "scope_claims": "SCOPE_CLAIMS",
    "client_id_claims": None,
    "leeway": "LEEWAY",
    "require_at_jwt_typ": "REQUIRE_AT_JWT_TYP",
    "unregistered_clients": "UNREGISTERED_CLIENTS",
    "preset": None,
    "status_list": "STATUS_LIST",
    "status_list_hosts": "STATUS_LIST_HOSTS",
}
_TOP_LEVEL_DEFAULTS: Mapping[str, Any] = {
    "ALGORITHMS": ("RS256",),
    "SCOPE_CLAIMS": ("scope", "scp", "permissions"),
    "LEEWAY": 0,
    "REQUIRE_AT_JWT_TYP": False,
    "UNREGISTERED_CLIENTS": "allow",
    "STATUS_LIST": "if_present",
    "STATUS_LIST_HOSTS": (),
}


@dataclass(frozen=True)
class Problem:
    """One configuration problem: ``where`` names the setting (``ISSUERS[1]['audience']``)."""

    where: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class IssuerPolicy:
    """Everything the verifier needs to know about one trusted issuer."""

    issuer: str
    aliases: tuple[str, ...]
    audiences: frozenset[str]
    jwks_url: str | None
    algorithms: tuple[str, ...]
    scope_claims: tuple[str, ...]
    client_id_claims: tuple[str, ...]
    sub_suffix: str | None  # stripped from sub when no client-id claim is present (Auth0's @clients)
    leeway: float
    require_at_jwt_typ: bool
    unregistered_clients: str
    preset: str | None
    status_list: str
    status_list_hosts: tuple[str, ...]

    @property
    def issuers(self) -> tuple[str, ...]:
        """Every exact ``iss`` value keyed under this entry."""
        return (self.issuer, *self.aliases)

    def client_id(self, claims: Mapping[str, Any]) -> Any:
        """The OAuth client id named by ``claims`` under this issuer's rule (not yet validated)."""
        for name in self.client_id_claims:
            value = claims.get(name)
            if type(value) is str and value:
                return value
        sub = claims.get("sub")
        if self.sub_suffix and type(sub) is str and sub.endswith(self.sub_suffix) and len(sub) > len(self.sub_suffix):
            return sub[: -len(self.sub_suffix)]
        return sub


def _is_str_list(value: Any, *, allow_empty: bool = False) -> bool:
    return (
        isinstance(value, (list, tuple))
        and (allow_empty or len(value) > 0)
        and all(isinstance(v, str) and v for v in value)
    )


def raw_entries(settings: Mapping[str, Any], problems: list[Problem]) -> list[tuple[str, Mapping[str, Any]]]:
    """(label, entry dict) for every configured issuer: ``ISSUERS``, or the ``ISSUER`` shorthand."""
    issuers = settings.get("ISSUERS")
    if issuers is not None:
        for key in ("ISSUER", "AUDIENCE", "JWKS_URL"):
            if settings.get(key) is not None:
                problems.append(Problem(key, f"{key} cannot be combined with ISSUERS: move it into the entries."))
        if not isinstance(issuers, (list, tuple)) or not issuers:
            problems.append(Problem("ISSUERS", "must be a non-empty list of dicts, one per trusted issuer."))
            return []
        out = []
        for i, entry in enumerate(issuers):
            if not isinstance(entry, Mapping):
                problems.append(Problem(f"ISSUERS[{i}]", f"must be a dict, not {type(entry).__name__}."))
                continue
            out.append((f"ISSUERS[{i}]", entry))
        return out
    issuer = settings.get("ISSUER")
    if issuer is None:
        problems.append(Problem("ISSUER", "no trusted issuer: set ISSUER and AUDIENCE, or ISSUERS."))
        return []
    jwks_url = settings.get("JWKS_URL")
    if isinstance(issuer, str):
        if isinstance(jwks_url, Mapping):
            problems.append(Problem("JWKS_URL", "must be a URL string when ISSUER is a single issuer."))
            jwks_url = None
        return [("ISSUER", {"issuer": issuer, "audience": settings.get("AUDIENCE"), "jwks_url": jwks_url})]
    if not _is_str_list(issuer):
        problems.append(Problem("ISSUER", "must be an issuer URL string (or use ISSUERS for several)."))
        return []
    problems.append(
        Problem("ISSUER", "a list of issuers is deprecated: use ISSUERS, one entry per issuer.", warning=True)
    )
    if jwks_url is not None and not isinstance(jwks_url, Mapping):
        problems.append(Problem("JWKS_URL", "must be a dict {issuer: url} when ISSUER is a list."))
        jwks_url = None
    urls = jwks_url or {}
    return [
        (f"ISSUER[{i}]", {"issuer": iss, "audience": settings.get("AUDIENCE"), "jwks_url": urls.get(iss)})
        for i, iss in enumerate(issuer)
    ]


def _value(entry: Mapping[str, Any], preset: Mapping[str, Any], settings: Mapping[str, Any], key: str) -> Any:
    if key in entry:
        return entry[key]
    if key in preset:
        return preset[key]
    top = ENTRY_KEYS[key]
    if top is None:
        return None
    return settings.get(top, _TOP_LEVEL_DEFAULTS[top])


def build_policies(
    settings: Mapping[str, Any], *, allowed_algorithms: Iterable[str]
) -> tuple[list[IssuerPolicy], list[Problem]]:
    """Validated policies for every trusted issuer, and every problem (errors and warnings)."""
    allowed = frozenset(allowed_algorithms)
    problems: list[Problem] = []
    policies: list[IssuerPolicy] = []
    seen: dict[str, str] = {}
    for label, entry in raw_entries(settings, problems):
        before = len([p for p in problems if not p.warning])
        policy = _build_one(label, entry, settings, allowed, problems)
        if policy is None or len([p for p in problems if not p.warning]) > before:
            continue
        for iss in policy.issuers:
            if iss in seen:
                problems.append(Problem(label, f"issuer {iss!r} is already trusted by {seen[iss]}."))
            seen.setdefault(iss, label)
        policies.append(policy)
    return policies, problems


def _build_one(  # noqa: C901 -- one straight list of per-key rules reads better than split helpers
    label: str, entry: Mapping[str, Any], settings: Mapping[str, Any], allowed: frozenset[str], problems: list[Problem]
) -> IssuerPolicy | None:
    def bad(key: str, message: str) -> None:
        # The one-issuer shorthand's keys are top-level settings: name them as the user wrote them.
        where = (ENTRY_KEYS.get(key) or key.upper()) if label == "ISSUER" else f"{label}[{key!r}]"
        problems.append(Problem(where, message))

    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    for key in unknown:
        bad(key, f"unknown key (known: {', '.join(ENTRY_KEYS)}).")
    issuer = entry.get("issuer")
    if not isinstance(issuer, str) or not issuer.strip():
        bad("issuer", "required: the issuer's exact iss value.")
        return None
    preset_name = entry.get("preset")
    preset: Mapping[str, Any] = {}
    if preset_name is not None:
        if preset_name not in PRESETS:
            bad("preset", f"unknown preset {preset_name!r} (known: {', '.join(PRESETS)}).")
            return None
        preset = PRESETS[preset_name]
    aliases = entry.get("issuer_aliases", ())
    if not _is_str_list(aliases, allow_empty=True):
        bad("issuer_aliases", "must be a list of issuer strings.")
        aliases = ()
    aliases = tuple(dict.fromkeys([*aliases, *preset_aliases(preset_name, issuer)]))
    audience = entry.get("audience")
    if isinstance(audience, str) and audience:
        audiences = frozenset([audience])
    elif _is_str_list(audience):
        audiences = frozenset(audience)
    else:
        bad("audience", "required in every entry: a non-empty string or list of strings (no fallback).")
        audiences = frozenset()
    jwks_url = entry.get("jwks_url")
    if jwks_url is not None and (not isinstance(jwks_url, str) or not jwks_url):
        bad("jwks_url", "must be a URL string (or absent: OIDC discovery).")
    algorithms = _value(entry, preset, settings, "algorithms")
    if not _is_str_list(algorithms) or not set(algorithms) <= allowed:
        bad("algorithms", f"must be a non-empty list of asymmetric algorithms from: {', '.join(sorted(allowed))}.")
        algorithms = ()
    scope_claims = _value(entry, preset, settings, "scope_claims")
    if not _is_str_list(scope_claims, allow_empty=True):
        bad("scope_claims", "must be a list of claim names.")
        scope_claims = ()
    client_id_claims = _value(entry, preset, settings, "client_id_claims")
    if client_id_claims is None:
        client_id_claims = DEFAULT_CLIENT_ID_CLAIMS
    if not _is_str_list(client_id_claims, allow_empty=True):
        bad("client_id_claims", "must be a list of claim names (sub is always the last resort).")
        client_id_claims = ()
    leeway = _value(entry, preset, settings, "leeway")
    if type(leeway) not in (int, float) or not math.isfinite(leeway) or not 0 <= leeway <= 300:
        bad("leeway", "must be a number of seconds from 0 to 300.")
        leeway = 0
    require_typ = _value(entry, preset, settings, "require_at_jwt_typ")
    if type(require_typ) is not bool:
        bad("require_at_jwt_typ", "must be True or False.")
    unregistered = _value(entry, preset, settings, "unregistered_clients")
    if unregistered not in UNREGISTERED_MODES:
        bad("unregistered_clients", f"must be one of {', '.join(map(repr, UNREGISTERED_MODES))}.")
    status_list = _value(entry, preset, settings, "status_list")
    if status_list not in STATUS_LIST_MODES:
        bad("status_list", f"must be one of {', '.join(map(repr, STATUS_LIST_MODES))}.")
    hosts = _value(entry, preset, settings, "status_list_hosts")
    if hosts is None:  # the top-level default: each issuer's own host
        hosts = ()
    elif isinstance(hosts, Mapping) and "status_list_hosts" not in entry:  # top-level {issuer: [host, ...]}
        hosts = hosts.get(issuer, ())
    if not _is_str_list(hosts, allow_empty=True):
        bad("status_list_hosts", "must be a list of host names.")
        hosts = ()
    return IssuerPolicy(
        issuer=issuer,
        aliases=aliases,
        audiences=audiences,
        jwks_url=jwks_url if isinstance(jwks_url, str) and jwks_url else None,
        algorithms=tuple(algorithms),
        scope_claims=tuple(scope_claims),
        client_id_claims=tuple(client_id_claims),
        sub_suffix=AUTH0_CLIENT_SUFFIX if preset_name in (None, "auth0") else None,
        leeway=float(leeway),
        require_at_jwt_typ=bool(require_typ),
        unregistered_clients=str(unregistered),
        preset=preset_name,
        status_list=str(status_list),
        status_list_hosts=tuple(hosts),
    )
