"""Signals: token_accepted(request, token) and token_rejected(request, reason, error)."""

from django.dispatch import Signal

# Sent for each request that authenticates with a valid token (cache hits included).
token_accepted = Signal()
# Sent when a token is refused; ``reason`` is a stable code such as "expired" or "bad_audience".
token_rejected = Signal()
