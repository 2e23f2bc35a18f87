"""StatusChecker: is this verified token still VALID in its issuer's Token Status List?

Pure core (no Django). One instance per process (built by token_status.py). Lists are kept in
memory as decoded bytes keyed by (issuer, uri): a token's status is a dict lookup and a few bit
operations (for a cached token found VALID, one lookup), no parsing, no cryptography. A list is
refreshed when its time is up (``ttl``, then ``exp``, then HTTP max-age, clamped by ``min_ttl``/``max_ttl``):

- first from the shared cache, which holds the signed Status List Token (each process verifies
  it: the cache is never trusted for integrity) with the exact issuer and uri, refused on mismatch;
- else one process of the fleet fetches (a ``claim()`` in the shared cache; threads of a process
  share one lock), the others wait a bounded time for its result;
- a failed refresh is remembered for ``retry`` seconds fleet-wide (no fetch storm at a down
  endpoint); meanwhile the last good list serves for ``stale_if_error`` seconds (never past its
  ``exp``), then ``unavailable``: "reject" (503) or "accept" (the status is not checked; logged
  once per outage).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from .errors import InvalidToken
from .statuslist import (
    VALID,
    KeyResolver,
    StatusList,
    StatusListInvalid,
    StatusListUnavailable,
    StatusListUnobtainable,
    check_list_uri,
    parse_status_claim,
    refusal,
    status_unknown,
    verify_status_list_token,
)

__all__ = ["StatusChecker", "MODES", "UNAVAILABLE_MODES"]

logger = logging.getLogger("drf_m2m_auth.statuslist")

MODES = ("if_present", "required", "ignore")
UNAVAILABLE_MODES = ("reject", "accept")
DEFAULT_TTL = 60.0  # neither ttl, exp nor Cache-Control: check again after a minute (clamped)
MAX_LISTS = 1024  # lists kept per process; more than this many live lists is not a real issuer
MAX_REMEMBERED = 4096  # cached tokens whose VALID status is remembered until their list's refresh


class _Entry:
    __slots__ = ("status_list", "fresh_until", "stale_until", "fetched_at")

    def __init__(self, status_list: StatusList, fresh_until: float, stale_until: float, fetched_at: float):
        self.status_list, self.fresh_until, self.stale_until = status_list, fresh_until, stale_until
        self.fetched_at = fetched_at


class StatusChecker:
    """Checks ``status.status_list`` of verified tokens; see the module docstring.

    ``key_resolver_for(issuer)`` returns the ``(kid, alg) -> VerifyKey`` of that issuer (the one
    the token verifier uses). ``mode_for(issuer)`` ("if_present", "required", "ignore"),
    ``allowed_hosts_for(issuer)`` and ``algorithms_for(issuer)`` (default: ``algorithms``) are that
    issuer's entry's rules. ``fetch(uri)`` returns ``(jws text, max_age)`` or raises
    StatusListUnobtainable / StatusListInvalid. ``shared_cache`` is a SharedCache or None.
    """

    def __init__(
        self,
        *,
        key_resolver_for: Callable[[str], KeyResolver],
        fetch: Callable[[str], tuple[str, int | None]],
        algorithms: Iterable[str],
        allowed_hosts_for: Callable[[str], Iterable[str]],
        mode_for: Callable[[str], str] = lambda issuer: "if_present",
        algorithms_for: Callable[[str], Iterable[str]] | None = None,
        insecure_hosts: Iterable[str] = (),
        shared_cache: Any = None,
        min_ttl: float = 5,
        max_ttl: float = 3600,
        stale_if_error: float = 300,
        unavailable: str = "reject",
        retry: float = 2,
        lock_wait: float = 5,
        max_inflated: int = 4 * 1024 * 1024,
        leeway: float = 0,
        clock: Callable[[], float] = time.time,
    ):
        if unavailable not in UNAVAILABLE_MODES:
            raise ValueError(f"unavailable must be one of {UNAVAILABLE_MODES}")
        self.key_resolver_for, self.fetch = key_resolver_for, fetch
        self.algorithms, self.algorithms_for = frozenset(algorithms), algorithms_for
        self.allowed_hosts_for, self.mode_for = allowed_hosts_for, mode_for
        self.insecure_hosts = tuple(insecure_hosts)
        self.shared = shared_cache if shared_cache is not None and shared_cache.stores else None
        self.min_ttl, self.max_ttl = float(min_ttl), max(float(max_ttl), float(min_ttl))
        self.stale_if_error, self.unavailable = float(stale_if_error), unavailable
        self.retry, self.lock_wait = float(retry), float(lock_wait)
        self.max_inflated, self.leeway, self.clock = int(max_inflated), float(leeway), clock
        self._lists: dict[tuple[str, str], _Entry] = {}
        self._valid: dict[int, tuple[dict[str, Any], _Entry]] = {}
        self._failures: dict[tuple[str, str], tuple[float, str]] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._outage_logged: set[tuple[str, str]] = set()

    # --- the per-request entry point ----------------------------------------------------------

    def check(self, claims: dict[str, Any], issuer: str) -> None:
        """Pass for VALID (or no status where allowed); InvalidToken / StatusListUnavailable otherwise."""
        status = claims.get("status")
        if status is None:  # most tokens carry no status: one lookup, and only "required" refuses
            if self.mode_for(issuer) == "required":
                self._check_slowly(claims, issuer, "required")
            return
        # The hottest path with a claim: a cached token (the same claims object) found VALID in a list
        # still fresh.
        seen = self._valid.get(id(claims))
        if seen is not None and seen[0] is claims and self.clock() < seen[1].fresh_until:
            return
        mode = self.mode_for(issuer)
        if mode == "ignore":
            return
        # The hot path (a fresh list in memory): a few type checks, one dict lookup, bit operations.
        ref = status.get("status_list") if type(status) is dict else None
        if type(ref) is dict:
            uri, idx = ref.get("uri"), ref.get("idx")
            if type(uri) is str and type(idx) is int:
                entry = self._lists.get((issuer, uri))
                if entry is not None and self.clock() < entry.fresh_until:
                    value = entry.status_list.status(idx)
                    if value == VALID:
                        return self._remember(claims, entry)
                    raise refusal(value)
        self._check_slowly(claims, issuer, mode)

    def _remember(self, claims: dict[str, Any], entry: _Entry) -> None:
        """VALID in ``entry`` while it is fresh; keyed by id(), the memo holds ``claims`` (no id reuse)."""
        valid = self._valid
        if len(valid) >= MAX_REMEMBERED:
            valid.clear()
        valid[id(claims)] = (claims, entry)

    def _check_slowly(self, claims: dict[str, Any], issuer: str, mode: str) -> None:
        parsed = parse_status_claim(claims)
        if parsed is None:
            if mode == "required":
                raise InvalidToken(
                    "The token has no status list claim, which its issuer's entry requires.",
                    reason="token_status_missing",
                    claim="status",
                )
            return
        entry = self._lists.get((issuer, parsed.uri))
        if entry is None or self.clock() >= entry.fresh_until:
            entry = self._refresh(issuer, parsed.uri)
            if entry is None:  # unobtainable and STATUS_LIST_UNAVAILABLE = "accept"
                return
        value = entry.status_list.status(parsed.idx)
        if value != VALID:
            raise refusal(value)
        self._remember(claims, entry)

    def clear(self) -> None:
        self._valid.clear()
        self._lists.clear()
        self._failures.clear()

    # --- refreshing one list --------------------------------------------------------------------

    def _lock(self, key: tuple[str, str]) -> threading.Lock:
        lock = self._locks.get(key)
        if lock is None:
            with self._locks_lock:
                if len(self._locks) >= 4 * MAX_LISTS:  # bounded; a forgotten lock only costs a fetch
                    self._locks.clear()
                    self._failures.clear()
                    self._outage_logged.clear()
                lock = self._locks.setdefault(key, threading.Lock())
        return lock

    def _refresh(self, issuer: str, uri: str) -> _Entry | None:
        key = (issuer, uri)
        check_list_uri(uri, self.allowed_hosts_for(issuer), self.insecure_hosts)
        lock = self._lock(key)
        if not lock.acquire(timeout=self.lock_wait + 1):
            return self._failed(key, "unobtainable", "another thread is still fetching the status list")
        try:
            now = self.clock()
            entry = self._lists.get(key)
            if entry is not None and now < entry.fresh_until:
                return entry  # another thread refreshed it while this one waited
            failure = self._failures.get(key)
            if failure is not None and now < failure[0]:
                return self._failed(key, failure[1], "the status list could not be refreshed recently")
            return self._obtain(issuer, uri, key)
        finally:
            lock.release()

    def _obtain(self, issuer: str, uri: str, key: tuple[str, str]) -> _Entry | None:
        shared = self.shared
        entry = self._from_shared(issuer, uri)
        if entry is not None and self.clock() < entry.fresh_until:
            return self._install(key, entry)
        owner = uuid.uuid4().hex
        claim_key = shared.key("statuslist-fetch", issuer, uri) if shared is not None else ""
        won = shared.claim(claim_key, self.lock_wait, owner) if shared is not None and shared.cross_process else True
        if won is False:
            outcome = self._wait_for_winner(issuer, uri)
            if isinstance(outcome, _Entry):
                return self._install(key, outcome)
            if outcome is not None:
                return self._failed(key, outcome, "another process could not refresh the status list")
        try:
            raw, max_age = self.fetch(uri)
            now = self.clock()
            verified = self._verify(raw, issuer, uri, now)
            entry = self._entry(verified, now, max_age)
        except StatusListInvalid as exc:
            return self._failed(key, "invalid", str(exc), publish=(issuer, uri))
        except StatusListUnobtainable as exc:
            return self._failed(key, "unobtainable", str(exc), publish=(issuer, uri))
        finally:
            if shared is not None and claim_key and won is True:
                shared.release(claim_key, owner)
        if shared is not None:
            doc = {"issuer": issuer, "uri": uri, "jws": raw, "fetched_at": now, "fresh_until": entry.fresh_until}
            shared.set(shared.key("statuslist", issuer, uri), doc, max(1.0, entry.stale_until - now))
        if key in self._outage_logged:
            self._outage_logged.discard(key)
            logger.warning("Status list of issuer %s is obtainable again: %s", issuer, uri)
        return self._install(key, entry)

    def _verify(self, raw: str, issuer: str, uri: str, now: float) -> Any:
        return verify_status_list_token(
            raw,
            uri=uri,
            issuer=issuer,
            key_resolver=lambda kid, alg: self.key_resolver_for(issuer)(kid, alg),  # keys down: unobtainable
            algorithms=self.algorithms if self.algorithms_for is None else frozenset(self.algorithms_for(issuer)),
            now=now,
            leeway=self.leeway,
            max_inflated=self.max_inflated,
        )

    def _entry(self, verified: Any, now: float, max_age: int | None) -> _Entry:
        # 8.2: the token's ttl and exp take priority over HTTP caching headers.
        if verified.ttl is not None:
            fresh_for = verified.ttl
        elif verified.exp is not None:
            fresh_for = verified.exp - now
        elif max_age is not None:
            fresh_for = float(max_age)
        else:
            fresh_for = DEFAULT_TTL
        fresh_for = min(max(fresh_for, self.min_ttl), self.max_ttl)  # 13.7: within reasonable bounds
        expires = math.inf if verified.exp is None else verified.exp + self.leeway
        fresh_until = min(now + fresh_for, expires)
        return _Entry(verified.status_list, fresh_until, min(fresh_until + self.stale_if_error, expires), now)

    def _from_shared(self, issuer: str, uri: str, *, fresh_only: bool = True) -> _Entry | None:
        """The fleet's copy: re-verified here; an entry for another issuer or uri is refused.

        ``fresh_only``: None for a copy past its fresh time, before paying for its verification.
        """
        shared = self.shared
        if shared is None:
            return None
        doc = shared.get(shared.key("statuslist", issuer, uri))
        if type(doc) is not dict or doc.get("issuer") != issuer or doc.get("uri") != uri:
            return None
        fetched_at, fresh_until, jws = doc.get("fetched_at"), doc.get("fresh_until"), doc.get("jws")
        if type(fetched_at) is not float or type(fresh_until) is not float or type(jws) is not str:
            return None
        if fresh_only and self.clock() >= fresh_until:
            return None
        try:
            verified = self._verify(jws, issuer, uri, self.clock())
        except (StatusListInvalid, StatusListUnobtainable):
            return None
        expires = math.inf if verified.exp is None else verified.exp + self.leeway
        stale_until = min(fresh_until + self.stale_if_error, expires)
        return _Entry(verified.status_list, min(fresh_until, expires), stale_until, fetched_at)

    def _wait_for_winner(self, issuer: str, uri: str) -> _Entry | str | None:
        """Another process is fetching: its fresh list, its failure ("invalid"/"unobtainable"), or None."""
        shared = self.shared
        assert shared is not None
        failure_key = shared.key("statuslist-failure", issuer, uri)
        deadline = time.monotonic() + self.lock_wait
        while time.monotonic() < deadline:  # bounded by lock_wait
            time.sleep(0.02)
            entry = self._from_shared(issuer, uri)
            if entry is not None and self.clock() < entry.fresh_until:
                return entry
            failure = shared.get(failure_key)
            if type(failure) is dict and failure.get("issuer") == issuer and failure.get("uri") == uri:
                return str(failure.get("kind"))
        return None

    def _install(self, key: tuple[str, str], entry: _Entry) -> _Entry:
        lists = self._lists
        if key not in lists and len(lists) >= MAX_LISTS:
            del lists[next(iter(lists))]
        lists[key] = entry
        self._failures.pop(key, None)
        return entry

    # --- failures: stale list, then 401 (invalid list) or 503/accept (unobtainable) -----------

    def _failed(self, key: tuple[str, str], kind: str, detail: str, publish: tuple[str, str] | None = None) -> Any:
        now = self.clock()
        if key not in self._failures or self._failures[key][0] <= now:
            self._failures[key] = (now + self.retry, kind)
            if publish is not None and self.shared is not None:
                doc = {"issuer": key[0], "uri": key[1], "kind": kind}
                self.shared.set(self.shared.key("statuslist-failure", *key), doc, self.retry)
        entry = self._lists.get(key)
        if entry is None:
            entry = self._from_shared(*key, fresh_only=False)
            if entry is not None:
                self._lists[key] = entry
        if entry is not None and now < entry.stale_until:
            if key not in self._outage_logged:
                self._outage_logged.add(key)
                logger.warning("Status list of issuer %s not refreshed (%s): serving the last good one", key[0], detail)
            return entry
        if kind == "invalid":
            if key not in self._outage_logged:
                self._outage_logged.add(key)
                logger.warning("Status list of issuer %s refused: %s", key[0], detail)
            raise status_unknown("The token's status list cannot be verified.")
        if self.unavailable == "accept":
            if key not in self._outage_logged:
                self._outage_logged.add(key)
                logger.warning(
                    "Status list of issuer %s unobtainable (%s): accepting tokens unchecked "
                    "(STATUS_LIST_UNAVAILABLE = accept)",
                    key[0],
                    detail,
                )
            return None
        raise StatusListUnavailable(
            "The token's status list cannot be obtained right now.", retry_after=max(1, math.ceil(self.retry))
        )
