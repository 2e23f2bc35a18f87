"""Is this client / this token still allowed? Answered from process memory, kept fresh via the cache.

Request path (``check`` / ``resources_for``): one monotonic-clock comparison and dict lookups in
an immutable snapshot. No database query and no cache round trip.

Freshness: at most once per REVOCATION_CHECK_INTERVAL a process reads one key from the shared
Django cache, the *generation*. Writers (``record_change``, called by every model write) stamp the
database in the writer's transaction and, once it commits, set the generation to a fresh random
number. A process that sees a generation other than the one it last saw reads the database's
stamps and reloads only the sections and clients that changed.

Why random generations and not ``incr``: the file and database caches implement ``incr`` as
get-then-set, so two concurrent writers could both write N+1 and a process that saw the first
would miss the second. A fresh random value never repeats, and a process reloads on *any*
difference, so every commit is seen.

Why revocations are never lost: the database is the truth, the cache only says "look now".
While the cache is unreachable a process compares the database stamps every interval instead (one
primary-key read); when it comes back the process re-checks the database and republishes. The
process that made a change reloads at once on commit, whatever the cache does. Independently of
the cache, every process re-reads the stamps every REVOCATION_DB_CHECK_INTERVAL seconds, which
bounds staleness even if a writer could not reach the cache and died before it came back.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import threading
import time
from typing import Any

from .conf import m2m_settings, on_reset
from .errors import InvalidToken, KeysUnavailable

logger = logging.getLogger(__name__)

GENERATION_KEY = "drf_m2m_auth:revocation:generation"
CHUNK = 500  # ids per IN (...) query: below SQLite's historical 999-parameter limit

_clock = time.monotonic


class RevocationUnavailable(KeysUnavailable):
    """The revocation state was never loaded and the database is unreachable: 503, retry."""

    def __init__(self, description: str, *, retry_after: int = 2):
        super().__init__(description, retry_after=retry_after)
        self.reason = "revocation_unavailable"


class ClientState:
    """What the request path needs to know about one registered client."""

    __slots__ = ("active", "valid_after", "resources", "revision", "pk", "min_iat")

    def __init__(
        self, *, active: bool, valid_after: float | None, resources: frozenset[str], revision: int, pk: Any = None
    ):
        self.active = active
        self.valid_after = valid_after
        self.resources = resources
        self.revision = revision
        self.pk = pk
        # The earliest iat accepted: the request path makes one comparison for both rules.
        self.min_iat = math.inf if not active else (valid_after if valid_after is not None else -math.inf)

    def __repr__(self) -> str:
        return f"<ClientState active={self.active} valid_after={self.valid_after} resources={sorted(self.resources)}>"


class Snapshot:
    """Everything ``check`` reads. Replaced whole on reload; only ``next_check`` moves in place."""

    __slots__ = (
        "clients",
        "jtis",
        "deny_unregistered",
        "next_check",
        "loaded",
        "seen_generation",
        "clients_stamp",
        "tokens_stamp",
        "db_deadline",
        "cache_failed",
    )

    def __init__(self) -> None:
        self.clients: dict[str, ClientState] = {}
        self.jtis: frozenset[str] = frozenset()
        self.deny_unregistered = False
        self.next_check = -math.inf  # the first check loads
        self.loaded = False
        self.seen_generation: Any = None
        self.clients_stamp: int | None = None
        self.tokens_stamp: int | None = None
        self.db_deadline = -math.inf
        self.cache_failed = False

    def copy(self) -> Snapshot:
        new = Snapshot()
        for name in self.__slots__:
            setattr(new, name, getattr(self, name))
        return new


_snap = Snapshot()
_lock = threading.Lock()
_dirty = False  # a change was made in this process: read the database at the next check
_dirty_owner = None  # the thread that made it, for the "still inside its transaction" case
_publish_pending = False  # a generation bump that could not reach the cache yet
_warned: set[str] = set()


# --- request path ----------------------------------------------------------------------------


def check(token) -> None:
    """Raise InvalidToken if the token's client is inactive or unknown (per policy) or the token
    is revoked (iat before the client's tokens_valid_after, or its jti on the deny-list)."""
    snap = _snap
    if _clock() >= snap.next_check:
        snap = _sync()
    state = snap.clients.get(token.client_id)
    if state is None:
        if snap.deny_unregistered:
            raise InvalidToken("The client is not registered.", reason="client_unregistered")
    elif token.iat < state.min_iat:  # one comparison covers both: inactive means min_iat = +inf
        if not state.active:
            raise InvalidToken("The client has been deactivated.", reason="client_inactive")
        raise InvalidToken("The access token has been revoked.", reason="token_revoked", claim="iat")
    if snap.jtis and token.jti in snap.jtis:
        raise InvalidToken("The access token has been revoked.", reason="jti_revoked", claim="jti")


def resources_for(client_id: str) -> frozenset[str] | None:
    """The resources granted to ``client_id``, or None if the client is not registered."""
    snap = _snap
    if _clock() >= snap.next_check:
        snap = _sync()
    state = snap.clients.get(client_id)
    return None if state is None else state.resources


def client_state(client_id: str) -> ClientState | None:
    """The cached state of one client (for tools and tests), fresh as ``check`` sees it."""
    snap = _snap
    if _clock() >= snap.next_check:
        snap = _sync()
    return snap.clients.get(client_id)


# --- write path ------------------------------------------------------------------------------


def record_change(using: str = "default", *, clients: bool = False, tokens: bool = False) -> None:
    """Call inside the writer's transaction after any change to clients, grants or the deny-list.

    Stamps the database now (so it commits or rolls back with the change) and bumps the cache
    generation once the transaction commits. The models call this for you.
    """
    from django.db import connections, transaction

    from .models import RevocationState, new_revision

    values = {}
    if clients:
        values["clients_stamp"] = new_revision()
    if tokens:
        values["tokens_stamp"] = new_revision()
    if not values:
        return
    manager = RevocationState.objects.using(using)
    if not manager.filter(pk=1).update(**values):
        manager.update_or_create(pk=1, defaults=values)
    _mark_dirty(using)
    connection = connections[using]
    if connection.in_atomic_block and _commit_hook_scheduled(connection):
        return  # one bump per transaction is enough
    transaction.on_commit(_after_commit, using=using)


def _commit_hook_scheduled(connection) -> bool:
    try:
        return any(entry[1] is _after_commit for entry in connection.run_on_commit)
    except (AttributeError, IndexError, TypeError):  # Django internals changed: just bump again
        return False


def _mark_dirty(using: str | None = None) -> None:
    """Read the database at the next check. ``using``: the change's alias, if still uncommitted."""
    global _dirty, _dirty_owner
    outer = None
    if using is not None:
        from django.db import connections

        connection = connections[using]
        blocks = getattr(connection, "atomic_blocks", None)
        outer = blocks[0] if connection.in_atomic_block and blocks else None
    _dirty_owner = (threading.get_ident(), using, outer)
    _dirty = True
    _snap.next_check = -math.inf


def _inside_dirty_transaction() -> bool:
    """Is the thread that made the change still inside that change's transaction? What it reads
    there may yet be rolled back (a test's transaction, say), so it re-reads at every check until
    the transaction is over; any other thread or transaction reads committed data."""
    owner = _dirty_owner
    if owner is None or owner[2] is None or owner[0] != threading.get_ident():
        return False
    from django.db import connections

    connection = connections[owner[1] or "default"]
    blocks = getattr(connection, "atomic_blocks", None)
    return bool(connection.in_atomic_block and blocks and blocks[0] is owner[2])


def _after_commit() -> None:
    """The change is committed: tell every process, and make it visible here at once."""
    publish()
    _mark_dirty()
    if _snap.loaded:
        _sync(wait=True)


def publish() -> bool:
    """Set a fresh generation in the shared cache; remembered and retried if the cache is down."""
    global _publish_pending
    cache = _cache()
    if cache is None:
        return True  # CACHE = None: every process compares the database stamps instead
    try:
        cache.set(GENERATION_KEY, new_generation(), timeout=None)
    except Exception as exc:  # any backend's connection error: the change must not be lost
        _publish_pending = True
        _warn_once(
            "publish",
            "revocation: cannot reach the cache to announce a change (%s); processes will find it in the database",
            exc,
        )
        return False
    _publish_pending = False
    return True


def new_generation() -> int:
    return secrets.randbits(63)


# --- reload ----------------------------------------------------------------------------------


def reset() -> None:
    """Forget everything; the next check reloads from the database (tests, setting changes)."""
    global _snap, _dirty, _dirty_owner, _publish_pending
    with _lock:
        _snap = Snapshot()
        _dirty = False
        _dirty_owner = None
        _publish_pending = False
        _warned.clear()


def _cache():
    """The shared cache (the CACHE alias), or None when CACHE is None."""
    alias = m2m_settings.CACHE
    if alias is None:
        return None
    from django.core.cache import caches

    return caches[alias]


def _sync(*, wait: bool = False) -> Snapshot:
    # The first load (and a reload this process asked for) waits: nobody may be judged against an
    # empty table. Later reloads are best effort: other threads keep the current snapshot.
    snap = _snap
    if not _lock.acquire(blocking=wait or not snap.loaded or _dirty):
        return snap
    try:
        return _sync_locked()
    finally:
        _lock.release()


def _sync_locked() -> Snapshot:
    global _snap, _dirty, _dirty_owner, _publish_pending
    from django.db import DatabaseError

    snap = _snap
    now = _clock()
    if snap.loaded and now < snap.next_check and not _dirty:
        return snap  # another thread reloaded while we waited
    interval = float(m2m_settings.REVOCATION_CHECK_INTERVAL)
    db_interval = m2m_settings.REVOCATION_DB_CHECK_INTERVAL
    policy = m2m_settings.UNREGISTERED_CLIENTS
    if policy not in ("allow", "deny"):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"DRF_M2M_AUTH['UNREGISTERED_CLIENTS'] must be 'allow' or 'deny', not {policy!r}")

    cache_ok, generation = _read_generation()
    dirty = _dirty
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
    try:
        changed = _reload(new)
    except DatabaseError as exc:
        _warn_once("db", "revocation: cannot read the database (%s); serving the last known state", exc)
        if not snap.loaded:
            raise RevocationUnavailable("Revocation state is temporarily unavailable.") from exc
        snap.next_check = now + min(interval, 1.0)
        return snap
    _warned.discard("db")

    new.deny_unregistered = policy == "deny"
    new.loaded = True
    new.db_deadline = now + float(db_interval) if db_interval else math.inf
    new.next_check = now + interval
    # Only a value read *before* the database counts as seen; our own bump does not.
    new.seen_generation = generation if cache_ok else None
    if changed and (not cache_ok or snap.cache_failed) and m2m_settings.CACHE is not None:
        _publish_pending = True  # others may not have seen this change: announce it
    new.cache_failed = not cache_ok
    if cache_ok:
        _warned.discard("cache")
        if generation is None:
            _add_generation()
        elif _publish_pending:
            publish()
    if dirty:
        if _inside_dirty_transaction():
            new.next_check = -math.inf
        else:  # read outside the writer's transaction: what we saw is committed
            _dirty = False
            _dirty_owner = None
    _snap = new
    return new


def _read_generation() -> tuple[bool, Any]:
    """``(reachable, generation)``. Without a shared cache (CACHE = None) nothing announces a
    change, so the caller compares the database stamps every interval (one primary-key read)."""
    cache = _cache()
    if cache is None:
        return False, None
    try:
        return True, cache.get(GENERATION_KEY)
    except Exception as exc:  # a down Redis raises redis.ConnectionError, others their own
        _warn_once(
            "cache",
            "revocation: cannot read the cache (%s); checking the database every interval until it is back",
            exc,
        )
        return False, None


def _add_generation() -> None:
    try:
        _cache().add(GENERATION_KEY, new_generation(), timeout=None)
    except Exception as exc:  # the next check reads the database again anyway
        logger.debug("revocation: cannot add the generation: %s", exc)


def _reload(new: Snapshot) -> bool:
    """Read the stamps, then reload the sections whose stamp moved. True if anything changed."""
    from django.utils import timezone

    from .models import RevocationState, RevokedToken

    row = RevocationState.objects.filter(pk=1).values_list("clients_stamp", "tokens_stamp").first()
    clients_stamp, tokens_stamp = row if row else (0, 0)
    changed = False
    # Stamps are read before the data: a change committed in between is picked up next time.
    if not new.loaded or clients_stamp != new.clients_stamp:
        new.clients = _reload_clients(new.clients)
        new.clients_stamp = clients_stamp
        changed = True
    if not new.loaded or tokens_stamp != new.tokens_stamp:
        new.jtis = frozenset(RevokedToken.objects.unexpired(timezone.now()).values_list("jti", flat=True))
        new.tokens_stamp = tokens_stamp
        changed = True
    return changed and new.loaded


def _reload_clients(old: dict[str, ClientState]) -> dict[str, ClientState]:
    from .models import Client, ResourceGrant

    rows = list(Client.objects.order_by().values_list("pk", "client_id", "revision"))
    fresh: dict[str, ClientState] = {}
    stale = []
    for pk, client_id, revision in rows:
        state = old.get(client_id)
        if state is not None and state.revision == revision and state.pk == pk:
            fresh[client_id] = state
        else:
            stale.append(pk)
    if not stale:
        return fresh
    everything = len(stale) > len(rows) // 2
    chunks = [None] if everything else [stale[i : i + CHUNK] for i in range(0, len(stale), CHUNK)]
    for chunk in chunks:
        clients = Client.objects.order_by()
        grants = ResourceGrant.objects.order_by()
        if chunk is not None:
            clients = clients.filter(pk__in=chunk)
            grants = grants.filter(client_id__in=chunk)
        resources: dict[Any, set[str]] = {}
        for client_pk, resource in grants.values_list("client_id", "resource"):
            resources.setdefault(client_pk, set()).add(resource)
        for pk, client_id, active, valid_after, revision in clients.values_list(
            "pk", "client_id", "is_active", "tokens_valid_after", "revision"
        ):
            fresh[client_id] = ClientState(
                active=active,
                valid_after=valid_after.timestamp() if valid_after else None,
                resources=frozenset(resources.get(pk, ())),
                revision=revision,
                pk=pk,
            )
    return fresh


def _warn_once(key: str, message: str, *args) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message, *args)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a lock held by another thread at fork time would never be released


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


on_reset(reset)  # DRF_M2M_AUTH or CACHES changed (override_settings): start over


def publish_pending() -> bool:
    """True if a change made in this process has not reached the shared cache yet."""
    return _publish_pending
