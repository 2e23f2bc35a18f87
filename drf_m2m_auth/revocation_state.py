"""What revocation.py holds in memory, and how it is read from the database.

``Snapshot`` is everything the request path reads (replaced whole on reload); ``DatabaseLoader``
reads the stamps and reloads only the sections and the clients that changed. The models are
imported when a loader first reads, never at import time.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["ClientState", "Snapshot", "DatabaseLoader", "CHUNK"]

CHUNK = 500  # ids per IN (...) query: below SQLite's historical 999-parameter limit


class ClientState:
    """What the request path needs to know about one registered (or deleted) client."""

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
    """Everything ``check`` reads. Replaced whole on reload; only ``next_check`` moves in place.

    ``tombstones``: deleted clients whose revocation state is still honoured (``DeletedClient``),
    consulted only for a client id that is not registered. ``jtis``: SHA-256 digests of the denied
    jtis that have not expired.
    """

    __slots__ = (
        "clients",
        "tombstones",
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
        self.tombstones: dict[str, ClientState] = {}
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


class DatabaseLoader:
    """Reads the revocation tables of one database alias (None: the router's choice)."""

    def __init__(self, using: str | None = None):
        self.using = using

    def _objects(self, model):
        return model.objects.using(self.using) if self.using else model.objects

    def reload(self, new: Snapshot) -> bool:
        """Read the stamps, then reload the sections whose stamp moved. True if anything changed."""
        from django.utils import timezone

        from .models import RevocationState, RevokedToken

        row = self._objects(RevocationState).filter(pk=1).values_list("clients_stamp", "tokens_stamp").first()
        clients_stamp, tokens_stamp = row if row else (0, 0)
        changed = False
        # Stamps are read before the data: a change committed in between is picked up next time.
        if not new.loaded or clients_stamp != new.clients_stamp:
            new.clients = self.clients(new.clients)
            new.tombstones = self.tombstones()
            new.clients_stamp = clients_stamp
            changed = True
        if not new.loaded or tokens_stamp != new.tokens_stamp:
            unexpired = self._objects(RevokedToken).unexpired(timezone.now())
            new.jtis = frozenset(unexpired.values_list("jti_sha256", flat=True))
            new.tokens_stamp = tokens_stamp
            changed = True
        return changed and new.loaded

    def tombstones(self) -> dict[str, ClientState]:
        from .models import DeletedClient

        rows = self._objects(DeletedClient).order_by().values_list("client_id", "was_active", "tokens_valid_after")
        return {
            client_id: ClientState(
                active=active, valid_after=after.timestamp() if after else None, resources=frozenset(), revision=0
            )
            for client_id, active, after in rows
        }

    def clients(self, old: dict[str, ClientState]) -> dict[str, ClientState]:
        from .models import Client, ResourceGrant

        rows = list(self._objects(Client).order_by().values_list("pk", "client_id", "revision"))
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
            clients = self._objects(Client).order_by()
            grants = self._objects(ResourceGrant).order_by()
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
