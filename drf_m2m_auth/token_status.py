"""Django glue for the Token Status List: builds the process's StatusChecker from DRF_M2M_AUTH.

Called once per authenticated request, after the token passed its signature, ``iss``, ``aud`` and
``exp`` checks (draft-ietf-oauth-status-list-20 8.3: no fetch for a token that is not valid).
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

from .conf import as_list, m2m_settings, on_reset
from .errors import KeysUnavailable
from .principal import AccessToken
from .verifier import get_verifier

_checker: Any = None  # None: not built yet; False: STATUS_LIST is "ignore"
_lock = threading.Lock()


def _hosts_setting() -> Any:
    hosts = m2m_settings.STATUS_LIST_HOSTS
    if hosts is None or isinstance(hosts, dict):
        return hosts
    if isinstance(hosts, str):
        return [hosts]
    return as_list(hosts)


def build_checker() -> Any:
    """A StatusChecker for the current settings, or False when status lists are ignored."""
    from .shared import get_shared_cache
    from .statuscheck import StatusChecker
    from .statuslist import fetch_status_list

    m2m_settings.ensure_valid()  # the table validated every STATUS_LIST_* value: a 503 otherwise
    s = m2m_settings
    mode = s.STATUS_LIST
    if mode == "ignore":
        return False
    hosts = _hosts_setting()
    timeout, max_bytes = float(s.HTTP_TIMEOUT), int(s.STATUS_LIST_MAX_BYTES)
    insecure = as_list(s.INSECURE_JWKS_HOSTS)

    def allowed_hosts_for(issuer: str) -> list[str]:
        if isinstance(hosts, dict):
            listed = hosts.get(issuer)
            if listed is not None:
                return as_list(listed)
        elif hosts is not None:
            return hosts
        host = urlsplit(issuer).hostname  # default: the issuer's own host, nothing else
        return [host] if host else []

    def key_resolver_for(issuer: str) -> Any:
        source = get_verifier().sources.get(issuer)
        if source is None:  # settings changed between the token's verification and this check
            raise KeysUnavailable("The token issuer is no longer configured.", retry_after=1)
        return source.get_key

    def fetch(uri: str) -> tuple[str, int | None]:
        return fetch_status_list(uri, timeout=timeout, max_bytes=max_bytes, insecure_hosts=insecure)

    return StatusChecker(
        key_resolver_for=key_resolver_for,
        fetch=fetch,
        algorithms=as_list(s.ALGORITHMS),
        allowed_hosts_for=allowed_hosts_for,
        mode_for=lambda issuer: mode,  # per issuer once issue 13's ISSUERS entries exist
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


def get_checker() -> Any:
    checker = _checker
    if checker is None:
        with _lock:
            if _checker is None:
                globals()["_checker"] = build_checker()
            checker = _checker
    return checker


def check_token_status(token: AccessToken) -> None:
    """Raise InvalidToken / StatusListUnavailable unless the token's status list says VALID."""
    checker = _checker if _checker is not None else get_checker()
    if checker is not False:
        checker.check(token.claims, token.issuer)


@on_reset
def _drop_checker() -> None:
    globals()["_checker"] = None
