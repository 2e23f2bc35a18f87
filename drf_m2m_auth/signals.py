"""Signals: token_accepted / token_rejected per request, jwks_refreshed / jwks_fetch_failed per issuer."""

from django.dispatch import Signal

__all__ = ["token_accepted", "token_rejected", "jwks_refreshed", "jwks_fetch_failed"]

# Sent for each request that authenticates with a valid token (cache hits included):
# request, token (AccessToken).
token_accepted = Signal()
# Sent when a token is refused: request, reason (a stable code such as "expired" or
# "bad_audience"), error (the M2MAuthError; its description never holds the token).
token_rejected = Signal()
# Sent when an issuer's keys were (re)loaded: issuer, url, source ("network" or "shared cache"),
# keys (how many usable keys), changed (the set of keys differs from the one held before).
jwks_refreshed = Signal()
# Sent when fetching an issuer's discovery document or JWKS failed: issuer, url, error (text),
# stale (True while the last good keys are still being served).
jwks_fetch_failed = Signal()

JWKS_SIGNALS = {"jwks_refreshed": jwks_refreshed, "jwks_fetch_failed": jwks_fetch_failed}
# Sent by the models (RevocationState.objects.stamp) inside the writer's transaction after a change
# to clients, grants, tombstones or the deny-list: using (the database alias), clients, tokens
# (which sections changed). revocation.py subscribes in AppConfig.ready().
revocation_changed = Signal()
