"""Events queued while a lock is held and delivered after it is released. Pure: no Django."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

__all__ = ["EventQueue"]


class EventQueue:
    """``add(name, **details)`` under a lock, ``flush()`` after it: each queued event goes to the
    receiver, ``receiver(name, **details)``, once. ``receiver_of()`` names the receiver (or None)
    and is asked at each event, so an owner may swap its receiver at any time. A receiver may do
    anything (even take the same lock) but cannot change the outcome: one that raises is logged on
    ``logger``. With no receiver, ``add`` keeps nothing."""

    def __init__(self, receiver_of: Callable[[], Callable[..., None] | None], logger: logging.Logger, **common: Any):
        self.receiver_of, self.logger, self.common = receiver_of, logger, common
        self._pending: list[tuple[str, dict[str, Any]]] = []

    def __bool__(self) -> bool:
        return bool(self._pending)

    def add(self, name: str, **details: Any) -> None:
        if self.receiver_of() is not None:
            self._pending.append((name, {**self.common, **details}))

    def flush(self) -> None:
        while self._pending:
            try:
                name, details = self._pending.pop(0)
            except IndexError:  # another thread sent it first
                return
            receiver = self.receiver_of()
            try:
                if receiver is not None:
                    receiver(name, **details)
            except Exception:  # a broken receiver must never fail a request
                self.logger.exception(
                    "%s receiver failed for %s", name, ", ".join(f"{k} {v}" for k, v in self.common.items())
                )
