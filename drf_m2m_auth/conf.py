"""The DRF_M2M_AUTH settings: one table (default, validator, check id, doc), validated as a whole.

Every key is a row of :data:`SETTINGS`. The settings are validated once, when first read (and again
after each ``setting_changed``): valid values come out converted (numbers as float/int, lists as
lists), reading an invalid value raises ImproperlyConfigured, and :func:`ensure_valid` is what the
request path calls so that an invalid configuration answers 503, never 200 and never 500.
``manage.py check`` reports the same problems through the same validators (checks.py), and the
settings reference of the docs is generated from this table.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, NamedTuple

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from .errors import ConfigurationInvalid
from .issuers import IssuerPolicy, build_policies
from .settings_row import Setting
from .settings_table import DEFAULTS, SETTINGS
from .validation import ALLOWED_ALGORITHMS, Context, Invalid, as_list, did_you_mean

__all__ = [
    "SETTINGS",
    "SETTINGS_NAME",
    "DEFAULTS",
    "ALLOWED_ALGORITHMS",
    "Setting",
    "Problem",
    "m2m_settings",
    "validate",
    "validate_full",
    "Validated",
    "IssuerPolicy",
    "issuer_policies",
    "own_api",
    "issuer_policy",
    "ensure_valid",
    "realm",
    "as_list",
    "on_reset",
    "reset_state",
]

SETTINGS_NAME = "DRF_M2M_AUTH"
logger = logging.getLogger("drf_m2m_auth")


class Problem(NamedTuple):
    """One reason the settings cannot be used: the key (None for the whole dict), check id, text."""

    key: str | None
    check_id: str
    message: str
    hint: str | None = None


def validate(user: Any, cache_aliases: Any = (), database_aliases: Any = None) -> tuple[dict[str, Any], list[Problem]]:
    """(converted values of the valid keys, every problem), for a DRF_M2M_AUTH value."""
    result = validate_full(user, cache_aliases, database_aliases)
    return result.values, result.problems


class Validated(NamedTuple):
    """Everything one validation finds: values, errors, the trusted issuers, and warnings."""

    values: dict[str, Any]
    problems: list[Problem]
    policies: list[IssuerPolicy]
    warnings: list[Problem]
    by_issuer: dict[str, IssuerPolicy]  # every exact iss (issuers and aliases) -> its policy


def validate_full(user: Any, cache_aliases: Any = (), database_aliases: Any = None) -> Validated:
    """The rows of SETTINGS, then the trusted issuers (issuers.build_policies) and their key URLs."""
    prefix = SETTINGS_NAME
    if not isinstance(user, Mapping):
        return Validated(
            {}, [Problem(None, "drf_m2m_auth.E001", f"{prefix} must be a dict, not {type(user).__name__}.")], [], [], {}
        )
    problems = [
        Problem(
            str(key),
            "drf_m2m_auth.E002",
            f"{prefix} has an unknown key {key!r}.{did_you_mean(key, list(SETTINGS))}",
            f"Known keys: {', '.join(SETTINGS)}.",
        )
        for key in user
        if key not in SETTINGS
    ]
    raw = {**DEFAULTS, **{k: val for k, val in user.items() if k in SETTINGS}}
    dbs = None if database_aliases is None else frozenset(database_aliases)
    ctx = Context(raw=raw, cache_aliases=frozenset(cache_aliases), database_aliases=dbs)
    values: dict[str, Any] = {}
    for name, row in SETTINGS.items():
        try:
            values[name] = row.validate(raw[name], ctx)
        except Invalid as exc:
            problems.append(
                Problem(name, f"drf_m2m_auth.{row.check_id}", f"{prefix}[{name!r}] {exc.message}", exc.hint)
            )
    policies, issuer_problems, warnings = _issuer_policies(
        {k: val for k, val in user.items() if k in SETTINGS}, raw, problems
    )
    problems += issuer_problems
    api_problems = [] if issuer_problems else _resolve_api(values, policies)
    if problems:
        policies = []
    # An undeterminable API alone keeps the issuers, so a control plane that serves no API still
    # registers clients (as a data plane it answers 503 regardless: the problem is a problem).
    problems += api_problems
    if values.get("API") is None:
        values.pop("API", None)  # never None: reading it raises, naming the problems
    by_issuer = {iss: policy for policy in policies for iss in policy.issuers}
    return Validated(values, problems, policies, warnings, by_issuer)


def _resolve_api(values: dict[str, Any], policies: list[IssuerPolicy]) -> list[Problem]:
    """API left out: the audience, when every issuer entry has that same single audience."""
    if values.get("API") is not None:
        return []
    audiences = {policy.audiences for policy in policies}
    if len(audiences) == 1:
        (only,) = audiences
        if len(only) == 1:
            values["API"] = next(iter(only))
            return []
    seen = sorted({aud for policy in policies for aud in policy.audiences})
    return [
        Problem(
            "API",
            "drf_m2m_auth.E032",
            f"{SETTINGS_NAME}['API'] is required: the issuers' audiences ({', '.join(map(repr, seen)) or 'none'}) "
            "are not one single audience, so this service's API identifier (the api of its grants) "
            "cannot be chosen for you.",
            "Set it to the identifier your grants use, usually one of the audiences.",
        )
    ]


def _where(where: str) -> tuple[str, str]:
    """("ISSUERS", "DRF_M2M_AUTH['ISSUERS'][1]['audience']") for "ISSUERS[1]['audience']"."""
    name, bracket, rest = where.partition("[")
    return name, f"{SETTINGS_NAME}[{name!r}]{bracket}{rest}"


def _issuer_policies(
    given: dict[str, Any], raw: dict[str, Any], row_problems: list[Problem]
) -> tuple[list, list[Problem], list[Problem]]:
    """(policies, errors, warnings): each issuers.Problem names its entry and key, with its check id."""
    from .validation import url_problem

    policies, found = build_policies(given, allowed_algorithms=ALLOWED_ALGORITHMS)
    already = {p.key for p in row_problems}
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for p in found:
        name, label = _where(p.where)
        if p.warning:
            warnings.append(Problem(name, "drf_m2m_auth.W030", f"{label}: {p.message}"))
        elif not (p.where == name and name in already):  # the row's own validator said it already
            check_id = SETTINGS[name].check_id if p.where == name and name in SETTINGS else "E030"
            errors.append(Problem(name, f"drf_m2m_auth.{check_id}", f"{label}: {p.message}"))
    entries = raw.get("ISSUERS")
    if isinstance(entries, (list, tuple)):  # the shorthand's URLs are JWKS_URL's and ISSUER's rows
        insecure = [h for h in as_list(raw.get("INSECURE_JWKS_HOSTS")) if isinstance(h, str)]
        index = {e.get("issuer"): i for i, e in enumerate(entries) if isinstance(e, Mapping)}
        for policy in policies:
            key = "jwks_url" if policy.jwks_url else "issuer"
            problem = url_problem(policy.jwks_url or policy.issuer, insecure)
            if problem:
                label = f"{SETTINGS_NAME}['ISSUERS'][{index.get(policy.issuer)}][{key!r}]"
                how = "" if policy.jwks_url else " (no jwks_url: its keys are found by OIDC discovery from it)"
                errors.append(
                    Problem(
                        "ISSUERS",
                        "drf_m2m_auth.E006",
                        f"{label}{how}: {problem}",
                        "JWKS must be fetched over https (loopback hosts and INSECURE_JWKS_HOSTS excepted).",
                    )
                )
    return policies, errors, warnings


_Loaded = Validated


class M2MSettings:
    """Attribute access to DRF_M2M_AUTH: validated, converted values; an invalid one raises."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None
        self._logged = False

    def user_settings(self) -> Any:
        return getattr(django_settings, SETTINGS_NAME, {})

    def load(self) -> _Loaded:
        """Validate the whole configuration (once per settings change); never raises."""
        loaded = self._loaded
        if loaded is None:
            with self._lock:
                if self._loaded is None:
                    aliases = getattr(django_settings, "CACHES", None) or {}
                    databases = getattr(django_settings, "DATABASES", None) or {}
                    self._loaded = validate_full(self.user_settings(), aliases, databases)
                loaded = self._loaded
        return loaded

    @property
    def problems(self) -> list[Problem]:
        return list(self.load().problems)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in SETTINGS:
            raise AttributeError(f"Invalid {SETTINGS_NAME} setting: {name!r}")
        loaded = self.load()
        try:
            if not loaded.problems:
                return loaded.values[name]
            unknown = [p for p in loaded.problems if p.check_id in ("drf_m2m_auth.E001", "drf_m2m_auth.E002")]
            if not unknown:
                return loaded.values[name]
        except KeyError:
            pass
        # A misspelt key means some setting is not what its author meant: no value is trusted then.
        mine = unknown or [p for p in loaded.problems if p.key == name] or loaded.problems
        raise ImproperlyConfigured(" ".join(p.message for p in mine))

    def ensure_valid(self) -> None:
        """Raise ConfigurationInvalid (a 503) when any setting is invalid; log it once per change."""
        problems = self.load().problems
        if problems:
            if not self._logged:
                self._logged = True
                logger.error(
                    "%s is invalid, every M2M request is answered 503 until it is fixed: %s",
                    SETTINGS_NAME,
                    "; ".join(f"{p.message} [{p.check_id}]" for p in problems),
                )
            raise ConfigurationInvalid("The API's authentication is misconfigured.")

    @property
    def issuer_policies(self) -> list[IssuerPolicy]:
        """One IssuerPolicy per trusted issuer (ISSUERS, or the ISSUER shorthand); raises when invalid."""
        loaded = self.load()
        if not loaded.policies:  # any problem but an undeterminable API leaves no policy
            raise ImproperlyConfigured(" ".join(p.message for p in loaded.problems))
        return list(loaded.policies)

    @property
    def issuers(self) -> list[str]:
        """Every trusted ``iss`` value (entries' issuers and their aliases)."""
        return [iss for policy in self.issuer_policies for iss in policy.issuers]

    @property
    def audiences(self) -> list[str]:
        """Every audience of every trusted issuer (sorted; per issuer, see issuer_policies)."""
        return sorted({aud for policy in self.issuer_policies for aud in policy.audiences})

    def reload(self) -> None:
        with self._lock:
            self._loaded = None
            self._logged = False


m2m_settings = M2MSettings()
ensure_valid = m2m_settings.ensure_valid


def issuer_policies() -> list[IssuerPolicy]:
    """The trusted issuers' policies, in settings order (ImproperlyConfigured while the settings are invalid)."""
    return m2m_settings.issuer_policies


def own_api() -> str:
    """This project's API (``DRF_M2M_AUTH["API"]``), or "" when it cannot be determined (E032).

    No grant has an empty api (saving fills it), so "" grants nothing when loading, and asks for
    the API explicitly in a form."""
    try:
        return m2m_settings.API
    except ImproperlyConfigured:
        return ""


def issuer_policy(iss: str) -> IssuerPolicy | None:
    """The policy whose issuer or alias is exactly ``iss``, or None (ImproperlyConfigured when invalid)."""
    loaded = m2m_settings.load()
    if loaded.problems:
        raise ImproperlyConfigured(" ".join(p.message for p in loaded.problems))
    return loaded.by_issuer.get(iss)


def realm() -> str:
    """REALM for a WWW-Authenticate header; the default while the settings are invalid (never a 500)."""
    try:
        return m2m_settings.REALM
    except ImproperlyConfigured:
        return DEFAULTS["REALM"]


_reset_callbacks: list = []


def on_reset(callback):
    """Register a callable run whenever DRF_M2M_AUTH (or CACHES) changes: derived state is cleared."""
    _reset_callbacks.append(callback)
    return callback


def reset_state() -> None:
    m2m_settings.reload()
    for callback in list(_reset_callbacks):
        callback()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTINGS_NAME, "CACHES"):
        reset_state()


setting_changed.connect(_on_setting_changed, dispatch_uid="drf_m2m_auth.conf.setting_changed")
