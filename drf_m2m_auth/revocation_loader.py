"""How a change reaches this process's snapshot (revocation_state.py) from the database.

``DatabaseLoader`` keeps the snapshot up to date by the change sequence (changes.py): it reads
``RevocationState.sequence``; if the snapshot is behind, it reads the ``RevocationChange`` rows
numbered after the snapshot's and re-reads only what they name (one client, one jti digest, or a
whole section for a bulk change). A first load, a snapshot older than the pruned history, or a
sequence that went backwards loads everything. Changes are applied in place, in the order
revocation_state.py's docstring explains; the row readers are revocation_load.py's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import revocation_load as load
from .revocation_state import ClientState, Snapshot

__all__ = ["DatabaseLoader"]


def _state(row: load.ClientRow, resources: frozenset[str]) -> ClientState:
    pk, issuer, client_id, active, after, revision = row
    return ClientState(
        active=active,
        valid_after=load.timestamp(after),
        resources=resources if issuer else frozenset(),  # an issuer-less row is granted nothing
        revision=revision,
        pk=pk,
        issuer=issuer or "",
        client_id=client_id,
    )


def _tombstone(active: bool, after: float | None) -> ClientState:
    return ClientState(active=active, valid_after=after, resources=frozenset(), revision=0)


class DatabaseLoader:
    """Reads the revocation tables of one database alias (None: the router's choice).

    ``api``: this service's API (``DRF_M2M_AUTH["API"]``); only its grants are loaded (None: the
    grants of every API, for tools). ``full_loads``/``incremental_loads`` count the two paths.
    """

    def __init__(self, using: str | None = None, api: str | None = None):
        self.using = using
        self.api = api
        self.interner = load.Interner()
        self.full_loads = 0
        self.incremental_loads = 0

    def reload(self, new: Snapshot) -> bool:
        """Bring ``new`` up to the database's sequence. True if a loaded snapshot changed."""
        from .changes import MAX_KEYS

        sequence, pruned = load.sequence_row(self)
        old = new.sequence
        if not new.loaded or old is None or sequence < old or old < pruned:
            self.load_everything(new, sequence)
            return new.loaded
        if sequence == old:
            return False
        rows = load.changes(self, old, sequence)
        if load.sequence_row(self)[1] > old:  # pruned past us meanwhile: what we read may be partial
            self.load_everything(new, sequence)
            return True
        client_keys: dict[str, set[str]] = {}
        digests: set[str] = set()
        whole_clients = whole_tokens = False
        for kind, issuer, key in rows:
            if kind == "client":
                client_keys.setdefault(issuer, set()).add(key)
            elif kind == "token":
                digests.add(key)
            elif kind == "tokens":
                whole_tokens = True
            else:  # "clients", or a kind this version does not know: re-read both
                whole_clients = True
                whole_tokens = whole_tokens or kind != "clients"
        # Read everything first, then apply: a failed read leaves the snapshot as it was.
        applies = []
        if whole_clients or sum(map(len, client_keys.values())) > MAX_KEYS:
            applies.append(self.reload_clients(new))
        elif client_keys:
            applies.append(self.read_clients({issuer: sorted(ids) for issuer, ids in client_keys.items()}))
        if whole_tokens or len(digests) > MAX_KEYS:
            denied = self.load_denied()
            applies.append(lambda snap: setattr(snap, "denied", denied))
        elif digests:
            applies.append(self.read_jtis(sorted(digests)))
        for apply in applies:
            apply(new)
        new.sequence = sequence
        self.incremental_loads += 1
        return True

    def load_everything(self, new: Snapshot, sequence: int) -> None:
        """Read every section (the data may be newer than ``sequence``: re-applied later, harmless)."""
        if new.by_pk:
            self.reload_clients(new)(new)
        else:
            new.clients, new.every_issuer, new.by_pk = self.place(load.client_rows(self), load.grants(self))
            new.tombstones = self.tombstones()
        new.denied = self.load_denied()
        new.sequence = sequence
        self.full_loads += 1

    # --- clients -------------------------------------------------------------------------------

    @staticmethod
    def place(rows: Any, granted: dict[Any, frozenset[str]], known: Any = ()) -> tuple[dict, dict, dict]:
        """(issuer -> id -> state, id -> state without an issuer, pk -> state) of ``rows`` plus the
        unchanged ``known`` states."""
        clients: dict[str, dict[str, ClientState]] = {}
        every: dict[str, ClientState] = {}
        by_pk: dict[Any, ClientState] = {}
        empty: frozenset[str] = frozenset()
        states = [*known, *(_state(row, granted.get(row[0], empty)) for row in rows)]
        for state in states:
            if state.issuer:
                clients.setdefault(state.issuer, {})[state.client_id] = state
            else:
                every[state.client_id] = state
            by_pk[state.pk] = state
        return clients, every, by_pk

    def reload_clients(self, new: Snapshot) -> Callable[[Snapshot], None]:
        """The whole clients section: re-read only the rows whose revision moved (fresh dicts).
        Returns what applies it."""
        known = new.by_pk
        unchanged, stale = [], []
        for pk, issuer, client_id, revision in load.revisions(self):
            state = known.get(pk)
            if (
                state is not None
                and state.revision == revision
                and state.issuer == (issuer or "")
                and state.client_id == client_id
            ):
                unchanged.append(state)
            else:
                stale.append(pk)
        if len(stale) > (len(stale) + len(unchanged)) // 2:
            rows, granted, unchanged = list(load.client_rows(self)), load.grants(self), []
        else:
            rows = list(load.client_rows(self, pks=stale))
            granted = load.grants(self, stale)
        tombstones = self.tombstones()
        clients, every, by_pk = self.place(rows, granted, unchanged)

        def apply(snap: Snapshot) -> None:
            snap.tombstones, snap.clients, snap.every_issuer, snap.by_pk = tombstones, clients, every, by_pk

        return apply

    def tombstones(self) -> dict[str | None, dict[str, ClientState]]:
        out: dict[str | None, dict[str, ClientState]] = {}
        for issuer, client_id, active, after in load.tombstones(self):
            out.setdefault(issuer, {})[client_id] = _tombstone(active, after)
        return out

    def read_clients(self, keys: dict[str, list[str]]) -> Callable[[Snapshot], None]:
        """Re-read the clients ``keys`` (issuer or "" -> client ids) names; returns what applies them."""
        rows = list(load.client_rows(self, keys=keys))
        granted = load.grants(self, [row[0] for row in rows if row[1]]) if rows else {}
        stones = {(issuer or "", cid): _tombstone(a, t) for issuer, cid, a, t in load.tombstones(self, keys)}
        return lambda new: self.apply_clients(new, keys, rows, granted, stones)

    def apply_clients(
        self,
        new: Snapshot,
        keys: dict[str, list[str]],
        rows: list[load.ClientRow],
        granted: dict[Any, frozenset[str]],
        stones: dict[tuple[str, str], ClientState],
    ) -> None:
        """Apply re-read clients in place. Nothing here can fail halfway; order matters (module doc)."""
        for (issuer, client_id), stone in stones.items():
            self.tombstones_of(new, issuer)[client_id] = stone
        seen = set()
        for row in rows:
            state = _state(row, granted.get(row[0], frozenset()))
            seen.add((state.issuer, state.client_id))
            self.location(new, state.issuer)[state.client_id] = state
            before = new.by_pk.get(state.pk)
            new.by_pk[state.pk] = state
            if before is not None and (before.issuer, before.client_id) != (state.issuer, state.client_id):
                self.forget(new, before)  # the row moved (its issuer or client id changed)
        for issuer, ids in keys.items():
            for client_id in ids:
                if (issuer, client_id) not in seen:
                    gone = self.location(new, issuer).get(client_id)
                    if gone is not None:
                        self.forget(new, gone)
                        if new.by_pk.get(gone.pk) is gone:
                            del new.by_pk[gone.pk]
                if (issuer, client_id) not in stones:
                    holder = new.tombstones.get(issuer or None)
                    if holder is not None and holder.pop(client_id, None) is not None and not holder:
                        new.tombstones.pop(issuer or None, None)

    @staticmethod
    def location(new: Snapshot, issuer: str) -> dict[str, ClientState]:
        if not issuer:
            return new.every_issuer
        found = new.clients.get(issuer)
        if found is None:
            found = new.clients.setdefault(issuer, {})
        return found

    @staticmethod
    def tombstones_of(new: Snapshot, issuer: str) -> dict[str, ClientState]:
        return new.tombstones.setdefault(issuer or None, {})

    def forget(self, new: Snapshot, state: ClientState) -> None:
        where = self.location(new, state.issuer)
        if where.get(state.client_id) is state:
            del where[state.client_id]

    # --- the jti deny-list ---------------------------------------------------------------------

    def load_denied(self) -> dict[str, frozenset[str | None]]:
        denied: dict[str, frozenset[str | None]] = {}
        shared: dict[frozenset[str | None], frozenset[str | None]] = {}
        for issuer, digest in load.jti_rows(self):
            have = denied.get(digest)
            issuers = frozenset((issuer,)) if have is None else have | {issuer}
            denied[digest] = shared.setdefault(issuers, issuers)
        return denied

    def read_jtis(self, digests: list[str]) -> Callable[[Snapshot], None]:
        """Re-read the deny-list entries of ``digests``; returns what applies them in place."""
        found: dict[str, set[str | None]] = {}
        for issuer, digest in load.jti_rows(self, digests):
            found.setdefault(digest, set()).add(issuer)

        def apply(new: Snapshot) -> None:
            denied = new.denied
            for digest in digests:  # one atomic write per digest: never a moment without the entry
                issuers = found.get(digest)
                if issuers:
                    denied[digest] = frozenset(issuers)
                else:
                    denied.pop(digest, None)

        return apply
