"""RevocationCache: is this client / this token still allowed? Answered from process memory, kept fresh via the cache.

Request path (``check`` / ``resources_for``): one monotonic-clock comparison and dict lookups in
the snapshot. No database query and no cache round trip.

Freshness: at most once per REVOCATION_CHECK_INTERVAL a process reads one key from the shared
Django cache, the *generation*. Writers (the models, through ``RevocationState.objects.stamp``)
number their change in the writer's transaction (changes.py) and send
``signals.revocation_changed``; this module, subscribed in ``AppConfig.ready()``, sets the
generation to a fresh random number once the transaction commits. A process that sees a
generation other than the one it last saw reads the database's change sequence and re-reads only
what the changes numbered after its snapshot name (revocation_state.py).

Why random generations and not ``incr``: the file and database caches implement ``incr`` as
get-then-set, so two concurrent writers could both write N+1 and a process that saw the first
would miss the second. A fresh random value never repeats, and a process reloads on *any*
difference, so every commit is seen.

Why revocations are never lost: the database is the truth, the cache only says "look now".
While the cache is unreachable a process compares the database sequence every interval instead (one
primary-key read); when it comes back the process re-checks the database and republishes. The
process that made a change reloads at once on commit, whatever the cache does. Independently of
the cache, every process re-reads the sequence every REVOCATION_DB_CHECK_INTERVAL seconds, which
bounds staleness even if a writer could not reach the cache and died before it came back. A cache
that other processes cannot see (LocMem, Dummy) announces nothing: the others find a change at
their periodic database check, and ``announcement()`` says so.

One ``RevocationCache`` per process (built lazily from the settings, dropped when they change);
tests build more to stand for other processes.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .errors import RevocationUnavailable
from .revocation_loader import DatabaseLoader
from .revocation_rules import judge
from .revocation_state import ClientState, Snapshot
from .shared import safe_call

__all__ = ["RevocationCache", "GENERATION_KIND", "new_generation"]

logger = logging.getLogger("drf_m2m_auth.revocation")

GENERATION_KIND = "revocation-generation"
_OUTAGE = object()
_NO_CLIENTS: Mapping[str, ClientState] = {}  # never written: a plain dict is the fastest .get()
# Token objects that passed against the current snapshot (the verifier's cache hands out the same
# AccessToken for the same JWT): its next check is one set lookup. Each snapshot with new content
# starts an empty set; cleared whole when full.
PASSED_MEMO_SIZE = 4096


def new_generation() -> int:
    return secrets.randbits(63)


def _database_errors() -> tuple[type[BaseException], ...]:
    # django.db.Error is the root of DatabaseError *and* InterfaceError (psycopg's "connection
    # already closed"); the latter is not a DatabaseError, and a cold process must answer 503.
    from django.db import Error

    return (Error,)


class RevocationCache:
    """One process's view of clients, grants, tombstones and the jti deny-list.

    ``cache``: a ``shared.SharedCache`` (or None: no announcements, database sequence every
    interval). ``loader``: reads the database (``revocation_loader.DatabaseLoader``).
    ``deny_unregistered``: refuse unregistered clients, unless ``deny_unregistered_by_issuer``
    (issuer -> bool) says otherwise for the token's issuer. ``issuer_aliases``: other exact ``iss``
    values -> the issuer entry's own issuer, under which its clients are registered.
    """

    def __init__(
        self,
        *,
        cache: Any = None,
        clock: Callable[[], float] = time.monotonic,
        check_interval: float = 1.0,
        db_check_interval: float | None = 60.0,
        deny_unregistered: bool = False,
        deny_unregistered_by_issuer: Mapping[str, bool] | None = None,
        issuer_aliases: Mapping[str, str] | None = None,
        loader: Any = None,
    ):
        self.cache = cache
        self.clock = clock
        self.check_interval = float(check_interval)
        self.db_check_interval = float(db_check_interval) if db_check_interval else None
        self.deny_unregistered = deny_unregistered
        self.unregistered = dict(deny_unregistered_by_issuer or {})
        # another exact iss value of an issuer entry (Entra's v1 form) -> the entry's issuer
        self.issuer_aliases = dict(issuer_aliases or {})
        self.loader = loader or DatabaseLoader()
        self.generation_key = cache.key(GENERATION_KIND) if cache is not None else None
        self.snapshot = Snapshot()
        self._lock = threading.Lock()
        self._dirty = False  # a change was made in this process: read the database at the next check
        self._dirty_owner: tuple | None = None  # (thread, alias, outer atomic block) of that change
        self.publish_pending = False  # a generation bump that could not reach the cache yet
        self._warned: set[str] = set()
        self._digests: dict[str, str] = {}  # jti -> SHA-256, for the deny-list lookup
        self.loaded_at: float | None = None  # wall-clock time of the last read of the database

    def __repr__(self) -> str:
        return f"<RevocationCache cache={self.cache!r} loaded={self.snapshot.loaded}>"

    # --- request path ------------------------------------------------------------------------

    def check(self, token) -> None:
        """Raise InvalidToken if the token's client (its issuer + client id) is inactive, deleted
        while revoked, or unknown (per its issuer's policy), or the token is revoked (iat before the
        client's tokens_valid_after, or its jti on that issuer's deny-list)."""
        snap = self.snapshot
        if self.clock() >= snap.next_check:
            snap = self.sync()
        passed = snap.passed
        try:
            if token in passed:  # this very token object passed against this very snapshot
                return
        except TypeError:  # not hashable (a test's stand-in): judge it every time
            judge(snap, token, self.issuer_aliases, self._digests)
            return
        judge(snap, token, self.issuer_aliases, self._digests)
        if len(passed) >= PASSED_MEMO_SIZE:
            passed.clear()
        passed.add(token)

    def resources_for(self, issuer: str | None, client_id: str) -> frozenset[str] | None:
        """The resources granted to the client (issuer, client_id), or None if it is not registered
        at that issuer (a client whose issuer is not recorded yet is granted nothing anywhere)."""
        snap = self.snapshot
        if self.clock() >= snap.next_check:
            snap = self.sync()
        if issuer is None:
            return None
        if self.issuer_aliases:
            issuer = self.issuer_aliases.get(issuer, issuer)
        state = snap.clients.get(issuer, _NO_CLIENTS).get(client_id)
        return None if state is None else state.resources

    def client_state(self, issuer: str, client_id: str) -> ClientState | None:
        """The state of one registered client (for tools and tests), fresh as ``check`` sees it."""
        snap = self.snapshot
        if self.clock() >= snap.next_check:
            snap = self.sync()
        if self.issuer_aliases:
            issuer = self.issuer_aliases.get(issuer, issuer)
        return snap.clients.get(issuer, _NO_CLIENTS).get(client_id)

    # --- write path ----------------------------------------------------------------------------

    def changed(self, using: str, on_commit: Callable[[], None]) -> None:
        """A change was stamped in ``using``'s (possibly open) transaction: read the database at
        the next check, and run ``on_commit`` (which calls ``committed``) once it commits."""
        from django.db import connections, transaction

        self.mark_dirty(using)
        connection = connections[using]
        if connection.in_atomic_block and _commit_hook_scheduled(connection, on_commit):
            return  # one bump per transaction is enough
        transaction.on_commit(on_commit, using=using)

    def mark_dirty(self, using: str | None = None) -> None:
        """Read the database at the next check. ``using``: the change's alias, if uncommitted."""
        outer = None
        if using is not None:
            from django.db import connections

            connection = connections[using]
            blocks = getattr(connection, "atomic_blocks", None)
            outer = blocks[0] if connection.in_atomic_block and blocks else None
        self._dirty_owner = (threading.get_ident(), using, outer)
        self._dirty = True
        self.snapshot.next_check = -math.inf

    def _inside_dirty_transaction(self) -> bool:
        """Is the thread that made the change still inside that change's transaction? What it reads
        there may yet be rolled back (a test's transaction, say), so it re-reads at every check
        until the transaction is over; any other thread or transaction reads committed data."""
        owner = self._dirty_owner
        if owner is None or owner[2] is None or owner[0] != threading.get_ident():
            return False
        from django.db import connections

        connection = connections[owner[1] or "default"]
        blocks = getattr(connection, "atomic_blocks", None)
        return bool(connection.in_atomic_block and blocks and blocks[0] is owner[2])

    def committed(self) -> None:
        """The change is committed: tell every process, and make it visible here at once."""
        self.publish()
        self.mark_dirty()
        if self.snapshot.loaded:
            self.sync(wait=True)

    def publish(self) -> bool:
        """Set a fresh generation in the shared cache; remembered and retried if the cache is down."""
        if self.cache is None:
            return True  # CACHE = None: every process compares the database sequence instead
        if not self.cache.set(self.generation_key, new_generation(), None):
            self.publish_pending = True
            self._warn_once(
                "publish",
                "revocation: cannot reach the cache to announce a change; processes will find it in the database",
            )
            return False
        self.publish_pending = False
        return True

    # --- reload --------------------------------------------------------------------------------

    def sync(self, *, wait: bool = False) -> Snapshot:
        # The first load (and a reload this process asked for) waits: nobody may be judged against
        # an empty table. Later reloads are best effort: other threads keep the current snapshot.
        snap = self.snapshot
        if not self._lock.acquire(blocking=wait or not snap.loaded or self._dirty):
            return snap
        try:
            return self._sync_locked()
        finally:
            self._lock.release()

    def _sync_locked(self) -> Snapshot:
        snap = self.snapshot
        now = self.clock()
        if snap.loaded and now < snap.next_check and not self._dirty:
            return snap  # another thread reloaded while we waited
        interval = self.check_interval
        cache_ok, generation = self._read_generation()
        dirty = self._dirty
        need_db = (
            not snap.loaded
            or dirty
            or not cache_ok
            or generation is None
            or generation != snap.seen_generation
            or snap.cache_failed
            or now >= snap.db_deadline
        )
        if not need_db:
            snap.next_check = now + interval
            return snap

        new = snap.copy()
        # Read inside this thread's own uncommitted write: what it sees may yet roll back, and a
        # rolled-back number is allocated again. Such a snapshot is marked provisional, and the
        # first read outside that transaction loads everything again.
        inside = dirty and self._inside_dirty_transaction()
        if snap.provisional and not inside:
            new.sequence = None
        try:
            changed = self.loader.reload(new)
        except _database_errors() as exc:
            self._warn_once("db", "revocation: cannot read the database (%s); serving the last known state", exc)
            if not snap.loaded:
                raise RevocationUnavailable("Revocation state is temporarily unavailable.") from exc
            snap.next_check = now + min(interval, 1.0)
            return snap
        self._warned.discard("db")

        new.deny_unregistered = self.deny_unregistered
        new.unregistered = self.unregistered
        if changed or not snap.loaded:
            new.passed = set()  # verdicts stand for the content they were judged against
        new.loaded = True
        new.provisional = inside
        new.db_deadline = now + self.db_check_interval if self.db_check_interval else math.inf
        new.next_check = now + interval
        # Only a value read *before* the database counts as seen; our own bump does not.
        new.seen_generation = generation if cache_ok else None
        if changed and (not cache_ok or snap.cache_failed) and self.cache is not None:
            self.publish_pending = True  # others may not have seen this change: announce it
        new.cache_failed = not cache_ok
        if cache_ok:
            self._warned.discard("cache")
            if generation is None:
                self.cache.add(self.generation_key, new_generation(), None)
            elif self.publish_pending:
                self.publish()
        if dirty:
            if inside:
                new.next_check = -math.inf
            else:  # read outside the writer's transaction: what we saw is committed
                self._dirty = False
                self._dirty_owner = None
        self.loaded_at = time.time()
        self.snapshot = new
        return new

    def _read_generation(self) -> tuple[bool, Any]:
        """``(reachable, generation)``. Without a shared cache (CACHE = None) nothing announces a
        change, so the caller compares the database sequence every interval (one primary-key read)."""
        cache = self.cache
        if cache is None:
            return False, None
        value = safe_call(cache.cache.get, self.generation_key, None, default=_OUTAGE, what=cache.what)
        if value is _OUTAGE:
            self._warn_once("cache", "revocation: cannot read the cache; checking the database every interval")
            return False, None
        return True, value

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message, *args)

    def after_fork(self) -> None:
        self._lock = threading.Lock()  # a lock held by another thread at fork time is never released


def _commit_hook_scheduled(connection, hook: Callable[[], None]) -> bool:
    try:
        return any(entry[1] is hook for entry in connection.run_on_commit)
    except (AttributeError, IndexError, TypeError):  # Django internals changed: just bump again
        return False
