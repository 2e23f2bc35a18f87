"""The change sequence's two models (re-exported by models.py): the counter row and the change rows.

See changes.py for how numbers are allocated and why a reader can never miss one.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .ids import escape
from .querysets import ISSUER_MAX_LENGTH, RevocationStateManager

__all__ = ["RevocationState", "RevocationChange"]


class RevocationState(models.Model):
    """One row: the fleet's change sequence, advanced in the same transaction as every change.

    ``sequence`` is the number of the last committed change. A writer allocates its number by
    updating this row inside its own transaction, so the row stays locked until it commits: a
    lower number can never commit after a higher one, and a reader that has seen ``sequence = N``
    can ask for the changes numbered above its snapshot's up to N and miss none
    (``RevocationChange``). ``pruned_through``: changes up to it have been deleted; a snapshot older
    than that reloads whole. ``clients_stamp``/``tokens_stamp`` (changes counted in the high bits,
    random low bits) move with every change too, for processes of versions before the sequence.

    The database is the truth; the cache generation only says "look now". A process that cannot
    reach the cache compares the sequence instead (one primary-key read per interval).
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    clients_stamp = models.BigIntegerField(default=0)
    tokens_stamp = models.BigIntegerField(default=0)
    sequence = models.BigIntegerField(default=0)
    pruned_through = models.BigIntegerField(default=0)

    objects = RevocationStateManager()

    class Meta:
        verbose_name = _("revocation state")
        default_permissions = ()

    def __str__(self) -> str:
        return f"sequence={self.sequence}"


class RevocationChange(models.Model):
    """One change, numbered by ``RevocationState.sequence``: what a process must re-read.

    ``kind``: ``"client"`` (the client ``key`` at ``issuer``: its row, its grants, its tombstone;
    issuer empty: the rows without an issuer), ``"token"`` (the jti digest ``key`` at ``issuer``,
    empty: at every issuer), or ``"clients"``/``"tokens"`` (a bulk change: re-read that whole
    section). Written with the change, in its transaction; pruned after ``CHANGE_RETENTION``.
    """

    KINDS = ("client", "token", "clients", "tokens")

    sequence = models.BigIntegerField(db_index=True)
    kind = models.CharField(max_length=8)
    issuer = models.CharField(max_length=ISSUER_MAX_LENGTH, blank=True)
    key = models.CharField(max_length=255, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("revocation change")
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.sequence} {self.kind} {escape(self.key)}"
