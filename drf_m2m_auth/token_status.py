"""Django glue for the Token Status List: builds the process's StatusChecker from DRF_M2M_AUTH.

Each trusted issuer has its own rules: an ``ISSUERS`` entry's ``status_list`` ("if_present",
"required", "ignore") and ``status_list_hosts`` (empty: the issuer's own host), falling back to the
top-level ``STATUS_LIST`` / ``STATUS_LIST_HOSTS`` (the one-issuer shorthand's settings).

Called once per authenticated request, after the token passed its signature, ``iss``, ``aud`` and
``exp`` checks (draft-ietf-oauth-status-list-20 8.3: no fetch for a token that is not valid).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from .conf import as_list, m2m_settings, on_reset
from .errors import KeysUnavailable
from .principal import AccessToken
from .verifier import get_verifier

_checker: Any = None  # None: not built yet; False: STATUS_LIST is "ignore"
# Read by authentication on every request: True until the checker is built, and afterwards while some
# issuer's status_list is "required" (every token needs the checker then); False when only tokens
# carrying a status claim do. An inline test there instead of a call saves one Python frame per request.
every_token = True

__all__ = ["IssuerRules", "build_checker", "get_checker", "check_token_status", "every_token"]
_lock = threading.Lock()


def _own_host(issuer: str) -> list[str]:
    host = urlsplit(issuer).hostname  # the default: the issuer's own host, nothing else
    return [host] if host else []


class IssuerRules:
    """One issuer's status-list rules, looked up per token issuer and remembered.

    ``policy_for(iss)`` returns the issuer's entry (an :class:`~drf_m2m_auth.issuers.IssuerPolicy`:
    ``status_list``, ``status_list_hosts``, ``algorithms``) or None for an issuer no longer
    configured. An entry's empty ``status_list_hosts`` means the issuer's own host. Only verified
    tokens reach these lookups, so the memo holds one row per trusted issuer (bounded anyway).
    """

    def __init__(self, policy_for: Callable[[str], Any], *, fallback_algorithms: Iterable[str] = ()):
        self.policy_for = policy_for
        self.fallback_algorithms = tuple(fallback_algorithms)
        self._modes: dict[str, str] = {}

    def mode_for(self, issuer: str) -> str:
        mode = self._modes.get(issuer)
        if mode is None:
            policy = self.policy_for(issuer)
            # Gone from the settings since its token was verified: checked (its keys are then unobtainable).
            mode = "if_present" if policy is None else policy.status_list
            if len(self._modes) < 256:
                self._modes[issuer] = mode
        return mode

    def allowed_hosts_for(self, issuer: str) -> list[str]:
        policy = self.policy_for(issuer)
        listed = () if policy is None else policy.status_list_hosts
        return list(listed) if listed else _own_host(issuer)

    def algorithms_for(self, issuer: str) -> tuple[str, ...]:
        policy = self.policy_for(issuer)
        return tuple(policy.algorithms) if policy is not None else self.fallback_algorithms


def build_checker() -> Any:
    """A StatusChecker for the current settings, or False when status lists are ignored."""
    global every_token
    from . import conf
    from .shared import get_shared_cache
    from .statuscheck import StatusChecker
    from .statuslist_fetch import fetch_status_list

    m2m_settings.ensure_valid()  # the table validated every STATUS_LIST_* value: a 503 otherwise
    s = m2m_settings
    # Each trusted issuer's entry has its own mode, hosts and algorithms (the one-issuer shorthand's
    # entry takes STATUS_LIST / STATUS_LIST_HOSTS). No checker at all when every entry ignores lists.
    policies = conf.issuer_policies()
    if all(policy.status_list == "ignore" for policy in policies):
        every_token = False
        return False
    rules = IssuerRules(conf.issuer_policy, fallback_algorithms=as_list(s.ALGORITHMS))
    # StatusChecker.check passes a token with no status claim unless its issuer's mode is "required"
    # (an issuer gone from the settings counts as "if_present"): skip the call for such tokens.
    required = any(rules.mode_for(iss) == "required" for policy in policies for iss in policy.issuers)
    mode_for, allowed_hosts_for, algorithms_for = rules.mode_for, rules.allowed_hosts_for, rules.algorithms_for

    timeout, max_bytes = float(s.HTTP_TIMEOUT), int(s.STATUS_LIST_MAX_BYTES)
    insecure = as_list(s.INSECURE_JWKS_HOSTS)

    def key_resolver_for(issuer: str) -> Any:
        source = get_verifier().sources.get(issuer)
        if source is None:  # settings changed between the token's verification and this check
            raise KeysUnavailable("The token issuer is no longer configured.", retry_after=1)
        return source.get_key

    def fetch(uri: str) -> tuple[str, int | None]:
        return fetch_status_list(uri, timeout=timeout, max_bytes=max_bytes, insecure_hosts=insecure)

    checker = StatusChecker(
        key_resolver_for=key_resolver_for,
        fetch=fetch,
        algorithms=as_list(s.ALGORITHMS),
        algorithms_for=algorithms_for,
        allowed_hosts_for=allowed_hosts_for,
        mode_for=mode_for,
        insecure_hosts=insecure,
        shared_cache=get_shared_cache(),
        min_ttl=float(s.STATUS_LIST_MIN_TTL),
        max_ttl=float(s.STATUS_LIST_MAX_TTL),
        stale_if_error=float(s.STATUS_LIST_STALE_IF_ERROR),
        unavailable=s.STATUS_LIST_UNAVAILABLE,
        lock_wait=timeout,
        max_inflated=int(s.STATUS_LIST_MAX_INFLATED_BYTES),
        leeway=float(s.LEEWAY),
    )
    every_token = required  # only once the checker exists: until then every token asks for it
    return checker


def get_checker() -> Any:
    global _checker
    checker = _checker
    if checker is None:
        with _lock:
            if _checker is None:
                _checker = build_checker()
            checker = _checker
    return checker


def check_token_status(token: AccessToken) -> None:
    """Raise InvalidToken / StatusListUnavailable unless the token's status list says VALID.

    The request path asks ``every_token or "status" in token.claims`` before calling (the skip for a
    token without a claim lives there only); StatusChecker.check is right for any token anyway.
    """
    checker = _checker if _checker is not None else get_checker()
    if checker is not False:
        checker.check(token.claims, token.issuer)


@on_reset
def _drop_checker() -> None:
    global _checker, every_token
    every_token = True
    _checker = None
