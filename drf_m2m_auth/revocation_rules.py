"""What a revocation snapshot says about one token: the rules ``RevocationCache.check`` applies.

``judge`` raises InvalidToken (``client_inactive``, ``token_revoked``, ``client_unregistered``,
``jti_revoked``) or returns. It reads the snapshot's dicts only (revocation_state.Snapshot); the
cache calls it for a token it has not judged against the current snapshot yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InvalidToken
from .ids import jti_digest
from .revocation_state import ClientState, Snapshot

__all__ = ["judge", "DIGEST_MEMO_SIZE"]

_NO_CLIENTS: Mapping[str, ClientState] = {}  # never written: a plain dict is the fastest .get()
DIGEST_MEMO_SIZE = 4096  # jtis whose digest is remembered (cleared whole when full: no eviction cost)


def judge(snap: Snapshot, token: Any, aliases: Mapping[str, str], digests: dict[str, str]) -> None:
    """Raise InvalidToken if ``snap`` refuses ``token``. ``aliases``: other exact iss values -> the
    issuer its clients are registered under; ``digests``: jti -> SHA-256 memo (the caller's)."""
    issuer = token.issuer
    if aliases:
        issuer = aliases.get(issuer, issuer)
    # Subscripts, not .get(): a registered client (the common case) costs two dict lookups.
    try:
        state = snap.clients[issuer][token.client_id]
    except KeyError:
        _not_registered(snap, issuer, token)
    else:
        if token.iat < state.min_iat:  # inactive means min_iat = +inf
            _reject(state)
    if snap.every_issuer:  # rows without an issuer yet: their revocation applies at every issuer
        unassigned = snap.every_issuer.get(token.client_id)
        if unassigned is not None and token.iat < unassigned.min_iat:
            _reject(unassigned)
    denied = snap.denied
    jti = token.jti
    if denied and jti is not None:
        digest = digests.get(jti)
        if digest is None:  # SHA-256 costs ~1 us here; a cached token's next request ~50 ns
            if len(digests) >= DIGEST_MEMO_SIZE:
                digests.clear()
            digest = digests[jti] = jti_digest(jti)
        issuers = denied.get(digest)
        if issuers is not None and (issuer in issuers or None in issuers):
            raise InvalidToken("The access token has been revoked.", reason="jti_revoked", claim="jti")


def _not_registered(snap: Snapshot, issuer: str, token: Any) -> None:
    """The client is not registered at ``issuer``: its tombstone, else its issuer's policy."""
    client_id = token.client_id
    # deleting a client never widens access
    state = snap.tombstones.get(issuer, _NO_CLIENTS).get(client_id)
    if state is None and snap.tombstones:
        state = snap.tombstones.get(None, _NO_CLIENTS).get(client_id)
    if (state is None or token.iat >= state.min_iat) and snap.unregistered.get(issuer, snap.deny_unregistered):
        raise InvalidToken("The client is not registered.", reason="client_unregistered")
    if state is not None and token.iat < state.min_iat:
        _reject(state)


def _reject(state: ClientState) -> None:
    if not state.active:
        raise InvalidToken("The client has been deactivated.", reason="client_inactive")
    raise InvalidToken("The access token has been revoked.", reason="token_revoked", claim="iat")
