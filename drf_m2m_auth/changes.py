"""The fleet's change sequence: every change numbered in the writer's own transaction.

``RevocationState.sequence`` is one counter row. A writer advances it with an ``UPDATE`` inside the
transaction that makes the change, so the row stays locked until that transaction ends: a second
writer waits, and takes the next number only once the first has committed (or rolled back, which
un-allocates the number too). Numbers therefore become visible in order and without gaps, and a
reader that has seen ``sequence = N`` can ask for "the changes numbered after my snapshot, up to
N" and never miss a lower number that commits later (a database sequence or random stamps could
not promise that: their numbers commit in any order).

Each change also leaves ``RevocationChange`` rows saying what to re-read: one per changed client or
jti, or one per section for a bulk change of more than ``MAX_KEYS`` rows. Rows older than
``CHANGE_RETENTION`` are pruned now and then; ``RevocationState.pruned_through`` says how far, and
a snapshot older than that reloads whole.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import models
from django.utils import timezone

__all__ = ["Change", "MAX_KEYS", "CHANGE_RETENTION", "PRUNE_EVERY", "allocate", "write_changes", "keys_or_none"]

Change = tuple[str, str, str]  # (kind, issuer or "", key): see models.RevocationChange
MAX_KEYS = 1000  # more rows in one write: one "whole section" change instead
CHANGE_RETENTION = dt.timedelta(days=1)  # far beyond any process's database check interval
PRUNE_EVERY = 1000  # prune on every PRUNE_EVERY-th number


def allocate(state_model: Any, using: str, values: dict[str, Any]) -> int:
    """Advance the counter (and ``values``, the old stamps) in the caller's transaction; the new number."""
    manager = state_model._base_manager.using(using)
    values = {**values, "sequence": models.F("sequence") + 1}
    if not manager.filter(pk=1).update(**values):
        manager.get_or_create(pk=1)
        manager.filter(pk=1).update(**values)
    # The row is ours until commit: this read sees our own number, and nobody else's.
    return manager.filter(pk=1).values_list("sequence", flat=True).get()


def keys_or_none(rows: Iterable[tuple[Any, Any]]) -> list[tuple[str, str]] | None:
    """(issuer or "", key) pairs, or None when there are more than MAX_KEYS (a bulk change)."""
    out: list[tuple[str, str]] = []
    for issuer, key in rows:
        out.append((issuer or "", key))
        if len(out) > MAX_KEYS:
            return None
    return out


def write_changes(
    change_model: Any,
    state_model: Any,
    using: str,
    sequence: int,
    changes: list[Change],
    now: dt.datetime | None = None,
) -> None:
    """Record what change ``sequence`` touched (same transaction); prune old rows now and then."""
    now = now or timezone.now()
    objects = change_model._base_manager.using(using)
    objects.bulk_create(
        [
            change_model(sequence=sequence, kind=kind, issuer=issuer, key=key, created=now)
            for kind, issuer, key in changes
        ]
    )
    if sequence % PRUNE_EVERY == 0:
        old = objects.filter(created__lt=now - CHANGE_RETENTION)
        through = old.aggregate(through=models.Max("sequence"))["through"]
        if through is not None:
            objects.filter(sequence__lte=through).delete()
            state_model._base_manager.using(using).filter(pk=1, pruned_through__lt=through).update(
                pruned_through=through
            )
