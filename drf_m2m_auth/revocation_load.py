"""Reading the revocation tables: whole sections (the first load) or the few rows a change names.

Used by ``revocation_loader.DatabaseLoader``; every function takes the loader (for its alias, its
API and its interning tables) and returns plain values, never touching a snapshot. The models are
imported when a function first runs, never at import time.

Memory at fleet scale (50,000 clients x 5 grants, 100,000 jtis): the few distinct resource names
and the identical grant sets are shared (``Interner``), rows are streamed (``iterator``) rather
than held as a list, and the jti digests are the database's own strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

__all__ = [
    "CHUNK",
    "STREAM",
    "Interner",
    "ClientRow",
    "client_rows",
    "revisions",
    "grants",
    "tombstones",
    "jti_rows",
    "sequence_row",
    "changes",
    "chunks",
    "timestamp",
]

CHUNK = 500  # keys per IN (...) query: below SQLite's historical 999-parameter limit
STREAM = 5000  # rows fetched per round trip when streaming a whole table

ClientRow = tuple[Any, str, str, bool, Any, int]  # pk, issuer, client_id, is_active, tokens_valid_after, revision


class Interner:
    """Shares equal grant sets (and their strings) between clients: many clients hold the same few."""

    def __init__(self) -> None:
        self.strings: dict[str, str] = {}
        self.sets: dict[frozenset[str], frozenset[str]] = {frozenset(): frozenset()}

    def string(self, value: str) -> str:
        return self.strings.setdefault(value, value)

    def resources(self, values: Iterable[str]) -> frozenset[str]:
        found = frozenset(values)
        shared = self.sets.get(found)
        if shared is None:
            shared = self.sets[found] = frozenset(self.string(v) for v in found)
        return shared


def chunks(values: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for value in values:
        batch.append(value)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def timestamp(value: Any) -> float | None:
    return value.timestamp() if value else None


def _objects(loader: Any, model: Any) -> Any:
    return model.objects.using(loader.using) if loader.using else model.objects


CLIENT_FIELDS = ("pk", "issuer", "client_id", "is_active", "tokens_valid_after", "revision")


def client_rows(
    loader: Any, *, pks: list[Any] | None = None, keys: dict[str, list[str]] | None = None
) -> Iterator[ClientRow]:
    """Client rows: every one (both None), those of ``pks``, or those of ``keys`` (issuer -> ids)."""
    from .models import Client

    base = _objects(loader, Client).order_by()
    if pks is None and keys is None:
        yield from base.values_list(*CLIENT_FIELDS).iterator(chunk_size=STREAM)
        return
    if pks is not None:
        for batch in chunks(pks):
            yield from base.filter(pk__in=batch).values_list(*CLIENT_FIELDS)
    for issuer, ids in (keys or {}).items():
        for batch in chunks(ids):
            yield from base.filter(issuer=issuer, client_id__in=batch).values_list(*CLIENT_FIELDS)


def revisions(loader: Any) -> Iterator[tuple[Any, str, str, int]]:
    """(pk, issuer, client_id, revision) of every client: what a section reload compares."""
    from .models import Client

    rows = _objects(loader, Client).order_by().values_list("pk", "issuer", "client_id", "revision")
    return rows.iterator(chunk_size=STREAM)


def grants(loader: Any, pks: list[Any] | None = None) -> dict[Any, frozenset[str]]:
    """client pk -> the resources granted at this loader's API (every client's when ``pks`` is None)."""
    from .models import ResourceGrant

    base = _objects(loader, ResourceGrant).order_by()
    if loader.api is not None:
        base = base.filter(api=loader.api)
    found: dict[Any, list[str]] = {}
    string = loader.interner.string
    if pks is None:
        for client_pk, resource in base.values_list("client_id", "resource").iterator(chunk_size=STREAM):
            found.setdefault(client_pk, []).append(string(resource))
    else:
        for batch in chunks(pks):
            for client_pk, resource in base.filter(client_id__in=batch).values_list("client_id", "resource"):
                found.setdefault(client_pk, []).append(string(resource))
    shared = loader.interner.resources
    return {pk: shared(resources) for pk, resources in found.items()}


def tombstones(
    loader: Any, keys: dict[str, list[str]] | None = None
) -> Iterator[tuple[str | None, str, bool, float | None]]:
    """(issuer or None, client_id, was_active, cut-off timestamp): every tombstone, or those of
    ``keys`` (issuer -> ids; issuer "" stands for the tombstones without an issuer)."""
    from .models import DeletedClient

    base = _objects(loader, DeletedClient).order_by()
    fields = ("issuer", "client_id", "was_active", "tokens_valid_after")
    if keys is None:
        selected: Iterable[Any] = [base]
    else:
        selected = (
            (base.filter(issuer=issuer) if issuer else base.filter(issuer__isnull=True)).filter(client_id__in=batch)
            for issuer, ids in keys.items()
            for batch in chunks(ids)
        )
    for query in selected:
        for issuer, client_id, active, after in query.values_list(*fields):
            yield issuer, client_id, active, timestamp(after)


def jti_rows(loader: Any, digests: list[str] | None = None) -> Iterator[tuple[str | None, str]]:
    """(issuer or None, digest) of the unexpired deny-list entries: all, or those of ``digests``."""
    from django.utils import timezone

    from .models import RevokedToken

    base = _objects(loader, RevokedToken).unexpired(timezone.now()).order_by()
    if digests is None:
        yield from base.values_list("issuer", "jti_sha256").iterator(chunk_size=STREAM)
        return
    for batch in chunks(digests):
        yield from base.filter(jti_sha256__in=batch).values_list("issuer", "jti_sha256")


def sequence_row(loader: Any) -> tuple[int, int]:
    """(sequence, pruned_through) of the change sequence; (0, 0) before the first change."""
    from .models import RevocationState

    row = _objects(loader, RevocationState).filter(pk=1).values_list("sequence", "pruned_through").first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def changes(loader: Any, after: int, through: int) -> list[tuple[str, str, str]]:
    """(kind, issuer, key) of the changes numbered ``after < n <= through``."""
    from .models import RevocationChange

    rows = _objects(loader, RevocationChange).filter(sequence__gt=after, sequence__lte=through).order_by()
    return list(rows.values_list("kind", "issuer", "key"))
