"""What revocation_cache.py holds in memory: ``Snapshot`` (everything the request path reads) and
one ``ClientState`` per client. ``revocation_loader.DatabaseLoader`` keeps it up to date.

Concurrency: a change is applied *in place* to the snapshot's dicts (copying 100,000 digests per
change would cost more than the change itself). Every single-key write of a dict is atomic under
the GIL, and the writes of one client are ordered so that a reader between two of them never sees
more access than before or after: a tombstone appears before its client disappears, a client's new
location before its old one goes, a denied jti is added before its other entries are dropped.
Only one thread loads at a time (the cache's lock).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["ClientState", "Snapshot"]


class ClientState:
    """What the request path needs to know about one registered (or deleted) client."""

    __slots__ = ("active", "valid_after", "resources", "revision", "pk", "min_iat", "issuer", "client_id")

    def __init__(
        self,
        *,
        active: bool,
        valid_after: float | None,
        resources: frozenset[str],
        revision: int,
        pk: Any = None,
        issuer: str = "",
        client_id: str = "",
    ):
        self.active = active
        self.valid_after = valid_after
        self.resources = resources
        self.revision = revision
        self.pk = pk
        self.issuer = issuer  # where the snapshot holds it ("": every_issuer)
        self.client_id = client_id
        # The earliest iat accepted: the request path makes one comparison for both rules.
        self.min_iat = math.inf if not active else (valid_after if valid_after is not None else -math.inf)

    def __repr__(self) -> str:
        return f"<ClientState active={self.active} valid_after={self.valid_after} resources={sorted(self.resources)}>"


class Snapshot:
    """Everything ``check`` reads. Its dicts are updated in place; the rest is replaced on reload.

    A client is (issuer, client_id). ``clients``: issuer -> client id -> state. ``every_issuer``:
    clients whose issuer is not recorded yet (rows from before the issuer column, until
    ``m2m_set_issuer`` fills them): their revocation state applies at every issuer and their grants
    at none. ``tombstones``: issuer (None: every issuer) -> client id -> deleted client's state,
    consulted only for a client that is not registered. ``denied``: SHA-256 digest of a denied,
    unexpired jti -> the issuers whose tokens it is denied in (None among them: every issuer).
    ``by_pk``: client row pk -> its state (to find a row that moved). ``sequence``: the change
    number loaded (the status view's version). ``provisional``: last read inside this process's
    own uncommitted write, which may roll back: the next read outside it loads everything.
    ``unregistered``: issuer -> deny an unregistered client?, ``deny_unregistered`` for an issuer
    not in it. ``passed``: the token objects that passed ``check`` against this content (a new
    snapshot with other content gets an empty one; see revocation_cache.PASSED_MEMO_SIZE).
    """

    __slots__ = (
        "clients",
        "every_issuer",
        "tombstones",
        "denied",
        "by_pk",
        "deny_unregistered",
        "unregistered",
        "next_check",
        "loaded",
        "seen_generation",
        "sequence",
        "provisional",
        "db_deadline",
        "cache_failed",
        "passed",
    )

    def __init__(self) -> None:
        self.clients: dict[str, dict[str, ClientState]] = {}
        self.every_issuer: dict[str, ClientState] = {}
        self.tombstones: dict[str | None, dict[str, ClientState]] = {}
        self.denied: dict[str, frozenset[str | None]] = {}
        self.by_pk: dict[Any, ClientState] = {}
        self.deny_unregistered = False
        self.unregistered: dict[str, bool] = {}
        self.next_check = -math.inf  # the first check loads
        self.loaded = False
        self.seen_generation: Any = None
        self.sequence: int | None = None
        self.provisional = False
        self.db_deadline = -math.inf
        self.cache_failed = False
        self.passed: set[Any] = set()  # tokens that passed ``check`` against this content

    def copy(self) -> Snapshot:
        new = Snapshot()
        for name in self.__slots__:
            setattr(new, name, getattr(self, name))
        return new

    @property
    def jtis(self) -> dict[str | None, frozenset[str]]:
        """issuer -> every digest denied there (for tools and tests; O(n): not on the request path)."""
        everywhere = frozenset(digest for digest, issuers in self.denied.items() if None in issuers)
        out: dict[str | None, set[str]] = {}
        for digest, issuers in self.denied.items():
            for issuer in issuers:
                out.setdefault(issuer, set()).add(digest)
        return {issuer: frozenset(d if issuer is None else d | everywhere) for issuer, d in out.items()}
