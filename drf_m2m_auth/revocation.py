"""Revocation for the request path: this process's ``RevocationCache`` behind module functions.

``check(token)`` and ``resources_for(issuer, client_id)`` are what authentication.py and permissions.py
call; they answer from memory (see revocation_cache.py for how the memory is kept fresh). The
instance is built lazily from DRF_M2M_AUTH and dropped when the settings change; tests build more
instances (``build(clock=...)``) to stand for other processes. ``connect()`` (from
``AppConfig.ready()``) subscribes to ``signals.revocation_changed``, which the models send.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from .conf import m2m_settings, on_reset, own_api
from .errors import RevocationUnavailable  # noqa: F401  (raised through here; its home is errors)
from .revocation_cache import GENERATION_KIND, RevocationCache, new_generation
from .revocation_issuers import issuer_policies, only_issuer, trusted_issuers
from .revocation_loader import DatabaseLoader
from .revocation_state import ClientState
from .shared import get_shared_cache

__all__ = [
    "RevocationCache",
    "ClientState",
    "GENERATION_KIND",
    "check",
    "resources_for",
    "client_state",
    "publish_pending",
    "announcement",
    "status",
    "process_cache",
    "build",
    "use_factory",
    "reset",
    "connect",
    "new_generation",
    "issuer_policies",
    "trusted_issuers",
    "only_issuer",
]


# --- the process instance ----------------------------------------------------------------------

_instance: RevocationCache | None = None
_instance_lock = threading.Lock()
_factory: Callable[[], RevocationCache] | None = None  # None: build()


def _unregistered_rules() -> tuple[bool, dict[str, bool], dict[str, str]]:
    """(top-level "deny"?, {iss: deny?} per issuer entry, {alias: issuer})."""
    policy = m2m_settings.UNREGISTERED_CLIENTS
    if policy not in ("allow", "deny"):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"DRF_M2M_AUTH['UNREGISTERED_CLIENTS'] must be 'allow' or 'deny', not {policy!r}")
    per_issuer: dict[str, bool] = {}
    aliases: dict[str, str] = {}
    for entry in issuer_policies():
        for iss in entry.issuers:
            per_issuer[iss] = entry.unregistered_clients == "deny"
        for alias in entry.aliases:
            aliases[alias] = entry.issuer
    return policy == "deny", per_issuer, aliases


def build(
    *, clock: Callable[[], float] = time.monotonic, cache: Any = "settings", loader: Any = None
) -> RevocationCache:
    """A RevocationCache configured from DRF_M2M_AUTH (tests: another process's, with their clock)."""
    deny, per_issuer, aliases = _unregistered_rules()
    return RevocationCache(
        cache=get_shared_cache() if cache == "settings" else cache,
        clock=clock,
        check_interval=float(m2m_settings.REVOCATION_CHECK_INTERVAL),
        db_check_interval=m2m_settings.REVOCATION_DB_CHECK_INTERVAL,
        deny_unregistered=deny,
        deny_unregistered_by_issuer=per_issuer,
        issuer_aliases=aliases,
        loader=loader or DatabaseLoader(api=own_api()),  # "": no grants (E032)
    )


def process_cache() -> RevocationCache:
    """This process's RevocationCache, built on first use."""
    global _instance
    instance = _instance
    if instance is None:
        with _instance_lock:
            if _instance is None:
                _instance = (_factory or build)()
            instance = _instance
    return instance


def use_factory(factory: Callable[[], RevocationCache] | None) -> None:
    """Build this process's RevocationCache with ``factory`` from now on, also after a settings
    change (tests: ``lambda: build(clock=fake_clock)``); None restores ``build``."""
    global _factory
    _factory = factory
    reset()


def reset() -> None:
    """Forget everything; the next check rebuilds from the settings and reloads (setting changes)."""
    global _instance
    _instance = None


def check(token) -> None:
    (_instance or process_cache()).check(token)


def resources_for(issuer: str | None, client_id: str) -> frozenset[str] | None:
    """The resources granted to the client (issuer, client_id); None: not registered."""
    return (_instance or process_cache()).resources_for(issuer, client_id)


def client_state(issuer: str, client_id: str) -> ClientState | None:
    return process_cache().client_state(issuer, client_id)


def publish_pending() -> bool:
    """True if a change made in this process has not reached the shared cache yet."""
    return _instance is not None and _instance.publish_pending


def announcement() -> dict[str, Any]:
    """How soon other processes see a change just made here, given the configured cache.

    ``announced`` is True only when a cache that other processes read accepted the generation.
    """
    shared = get_shared_cache()
    check_interval = float(m2m_settings.REVOCATION_CHECK_INTERVAL)
    db_interval = m2m_settings.REVOCATION_DB_CHECK_INTERVAL
    cross = shared is not None and shared.cross_process
    announced = cross and not publish_pending()
    return {
        "announced": announced,
        "cache": None if shared is None else shared.alias,
        "cross_process_cache": cross,
        "other_processes_within_s": check_interval if announced else (float(db_interval) if db_interval else None),
    }


def status() -> dict[str, Any]:
    """What this process has loaded, for the status view: ``version``, ``loaded_at``, ``age_s``.

    Checks for changes first, exactly as a request would (so polling the status view drives the
    same reload a request does). ``version`` is the change sequence the snapshot has loaded
    (``RevocationState.sequence``, changes.py): every committed change has a number, and a process
    at version V has applied every change numbered up to V. ``m2m_drill`` reads the number its own
    write produced. Raises ``RevocationUnavailable`` while nothing could be loaded yet.
    """
    instance = process_cache()
    snap = instance.snapshot
    if instance.clock() >= snap.next_check:
        snap = instance.sync()
    loaded_at = instance.loaded_at
    return {
        "version": snap.sequence if snap.loaded else None,
        "loaded_at": loaded_at,
        "age_s": None if loaded_at is None else round(max(0.0, time.time() - loaded_at), 3),
    }


def _after_commit() -> None:
    process_cache().committed()


def _on_revocation_changed(sender: Any, using: str, **kwargs: Any) -> None:
    process_cache().changed(using, _after_commit)


def connect() -> None:
    """Subscribe to the models' ``revocation_changed`` signal (AppConfig.ready() calls it)."""
    from .signals import revocation_changed

    revocation_changed.connect(_on_revocation_changed, dispatch_uid="drf_m2m_auth.revocation")


def _after_fork_in_child() -> None:
    if _instance is not None:
        _instance.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


on_reset(reset)  # DRF_M2M_AUTH or CACHES changed (override_settings): start over
