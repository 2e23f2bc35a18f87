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

    A client is (issuer, client_id). ``clients``: issuer -> client id -> state. ``every_issuer``:
    clients whose issuer is not recorded yet (rows from before the issuer column, until
    ``m2m_set_issuer`` fills them): their revocation state applies at every issuer and their grants
    at none. ``tombstones``: issuer (None: every issuer) -> client id -> deleted client's state,
    consulted only for a client that is not registered. ``jtis``: issuer -> SHA-256 digests of the
    denied jtis that have not expired (each issuer's set includes the entries for every issuer,
    which alone are under None). ``unregistered``: issuer -> deny an
    unregistered client?, ``deny_unregistered`` for an issuer not in it.
    """

    __slots__ = (
        "clients",
        "every_issuer",
        "tombstones",
        "jtis",
        "deny_unregistered",
        "unregistered",
        "next_check",
        "loaded",
        "seen_generation",
        "clients_stamp",
        "tokens_stamp",
        "db_deadline",
        "cache_failed",
    )

    def __init__(self) -> None:
        self.clients: dict[str, dict[str, ClientState]] = {}
        self.every_issuer: dict[str, ClientState] = {}
        self.tombstones: dict[str | None, dict[str, ClientState]] = {}
        self.jtis: dict[str | None, frozenset[str]] = {}
        self.deny_unregistered = False
        self.unregistered: dict[str, bool] = {}
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


def _state(active: bool, after: Any, resources: frozenset[str] = frozenset(), revision: int = 0, pk: Any = None):
    return ClientState(
        active=active,
        valid_after=after.timestamp() if after else None,
        resources=resources,
        revision=revision,
        pk=pk,
    )


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
            new.clients, new.every_issuer = self.clients(new.clients, new.every_issuer)
            new.tombstones = self.tombstones()
            new.clients_stamp = clients_stamp
            changed = True
        if not new.loaded or tokens_stamp != new.tokens_stamp:
            unexpired = self._objects(RevokedToken).unexpired(timezone.now()).order_by()
            jtis: dict[str | None, set[str]] = {}
            for issuer, digest in unexpired.values_list("issuer", "jti_sha256"):
                jtis.setdefault(issuer, set()).add(digest)
            everywhere = jtis.get(None, set())  # entries without an issuer deny at every issuer
            new.jtis = {
                issuer: frozenset(digests if issuer is None else digests | everywhere)
                for issuer, digests in jtis.items()
            }
            new.tokens_stamp = tokens_stamp
            changed = True
        return changed and new.loaded

    def tombstones(self) -> dict[str | None, dict[str, ClientState]]:
        from .models import DeletedClient

        rows = (
            self._objects(DeletedClient)
            .order_by()
            .values_list("issuer", "client_id", "was_active", "tokens_valid_after")
        )
        out: dict[str | None, dict[str, ClientState]] = {}
        for issuer, client_id, active, after in rows:
            out.setdefault(issuer, {})[client_id] = _state(active, after)
        return out

    def clients(
        self, old: dict[str, dict[str, ClientState]], old_every: dict[str, ClientState]
    ) -> tuple[dict[str, dict[str, ClientState]], dict[str, ClientState]]:
        """(issuer -> client id -> state, client id -> state of the clients without an issuer)."""
        from .models import Client, ResourceGrant

        known = {state.pk: state for states in old.values() for state in states.values()}
        known.update((state.pk, state) for state in old_every.values())
        rows = list(self._objects(Client).order_by().values_list("pk", "issuer", "client_id", "revision"))
        fresh: dict[str, dict[str, ClientState]] = {}
        every: dict[str, ClientState] = {}

        def place(issuer: str | None, client_id: str, state: ClientState) -> None:
            if issuer:
                fresh.setdefault(issuer, {})[client_id] = state
            else:  # grants apply at no issuer: what an issuer-less row grants is never known
                every[client_id] = state

        stale = []
        for pk, issuer, client_id, revision in rows:
            state = known.get(pk)
            if state is not None and state.revision == revision:
                place(issuer, client_id, state)
            else:
                stale.append(pk)
        if not stale:
            return fresh, every
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
            for pk, issuer, client_id, active, valid_after, revision in clients.values_list(
                "pk", "issuer", "client_id", "is_active", "tokens_valid_after", "revision"
            ):
                granted = frozenset(resources.get(pk, ())) if issuer else frozenset()
                place(issuer, client_id, _state(active, valid_after, granted, revision, pk))
        return fresh, every
