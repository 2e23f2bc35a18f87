"""Clients, their resource grants, and the jti deny-list: what revocation.py serves from memory.

Every write goes through one funnel, ``revocation.record_change()``: model saves and deletes
(signals, also on cascades and ``QuerySet.delete()``), and the querysets' ``update()`` and
``bulk_create()``. It stamps the database (same transaction) and, on commit, bumps the shared
cache's generation so every process reloads what changed within REVOCATION_CHECK_INTERVAL.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models, router, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# A resource is what a view names in ``resource_name``: no spaces, so an admin typo stands out.
RESOURCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}\Z")
# RFC 7519 4.1.7 says jti is case-sensitive and says nothing else; we refuse blanks and control
# characters so a pasted token fragment or a stray newline is an error, not a silent no-op.
JTI_RE = re.compile(r"^[\x21-\x7e]{1,255}\Z")

validate_resource = RegexValidator(
    RESOURCE_RE, _("A resource is 1-100 characters: letters, digits and _ . : / - (no spaces).")
)
validate_jti = RegexValidator(JTI_RE, _("A jti is 1-255 printable ASCII characters without spaces."))


def new_revision() -> int:
    """A random stamp, never an increment: two admins saving stale forms cannot collide."""
    return secrets.randbits(62)


def _record(using: str | None, model, *, clients: bool = False, tokens: bool = False) -> None:
    from . import revocation

    revocation.record_change(using or router.db_for_write(model), clients=clients, tokens=tokens)


def _atomic(instance, kwargs):
    """save() runs in a transaction, so the post_save stamp commits (or rolls back) with the row."""
    using = kwargs.get("using") or router.db_for_write(type(instance), instance=instance)
    return transaction.atomic(using=using, savepoint=False)


class _StampingQuerySet(models.QuerySet):
    """Bulk writes skip save() and its signals, so they stamp the revocation state themselves,
    in the same transaction (revocation.py reloads on the stamp)."""

    stamp: dict[str, bool] = {}

    def _prepare_update(self, kwargs: dict[str, Any]) -> None:
        pass

    def update(self, **kwargs):
        self._prepare_update(kwargs)
        with transaction.atomic(using=self.db, savepoint=False):
            count = super().update(**kwargs)
            if count:
                _record(self.db, self.model, **self.stamp)
        return count

    update.alters_data = True  # type: ignore[attr-defined]

    def bulk_create(self, objs, *args, **kwargs):
        with transaction.atomic(using=self.db, savepoint=False):
            created = super().bulk_create(objs, *args, **kwargs)
            if created:
                _record(self.db, self.model, **self.stamp)
        return created


class ClientQuerySet(_StampingQuerySet):
    stamp = {"clients": True}

    def active(self):
        return self.filter(is_active=True)

    def _prepare_update(self, kwargs: dict[str, Any]) -> None:
        # Every bulk update (admin actions, commands, user code) re-stamps the rows it touches.
        kwargs.setdefault("updated", timezone.now())
        kwargs["revision"] = new_revision()

    def revoke_tokens(self, at: dt.datetime | None = None) -> int:
        """Reject every token issued before ``at`` (default: now); returns the rows updated."""
        return self.update(tokens_valid_after=at or timezone.now())

    def deactivate(self) -> int:
        return self.update(is_active=False)

    def activate(self) -> int:
        return self.update(is_active=True)


class Client(models.Model):
    """A calling service, known by its OAuth client id."""

    client_id = models.CharField(
        _("client id"),
        max_length=255,
        unique=True,
        help_text=_(
            "The OAuth client id as the issuer's dashboard shows it (for Auth0, without "
            "the '@clients' suffix of the token's sub)."
        ),
    )
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("An inactive client's tokens are all rejected (401 invalid_token).")
    )
    tokens_valid_after = models.DateTimeField(
        _("tokens valid after"),
        null=True,
        blank=True,
        help_text=_("Tokens issued (iat) before this moment are rejected. Set by 'revoke all tokens now'."),
    )
    created = models.DateTimeField(_("created"), auto_now_add=True)
    updated = models.DateTimeField(_("updated"), auto_now=True)
    # Rewritten on every change to the client or its grants; processes compare it to reload
    # only the clients that changed.
    revision = models.BigIntegerField(default=new_revision, editable=False)

    objects = ClientQuerySet.as_manager()

    class Meta:
        verbose_name = _("client")
        verbose_name_plural = _("clients")
        ordering = ["client_id"]

    def __str__(self) -> str:
        if self.name and self.name != self.client_id:
            return f"{self.name} ({self.client_id})"
        return self.client_id

    def save(self, *args, **kwargs):
        self.revision = new_revision()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "revision", "updated"}
        with _atomic(self, kwargs):
            super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        if self.client_id and self.client_id.endswith("@clients"):
            raise ValidationError({"client_id": _("Use the client id without Auth0's '@clients' suffix.")})

    def revoke_tokens(self, at: dt.datetime | None = None) -> None:
        self.tokens_valid_after = at or timezone.now()
        self.save(update_fields=["tokens_valid_after"])

    def deactivate(self) -> None:
        self.is_active = False
        self.save(update_fields=["is_active"])

    def activate(self) -> None:
        self.is_active = True
        self.save(update_fields=["is_active"])

    @property
    def resources(self) -> list[str]:
        return sorted(g.resource for g in self.grants.all())


class ResourceGrantQuerySet(models.QuerySet):
    def _touch_clients(self, client_pks) -> None:
        Client.objects.using(self.db).filter(pk__in=set(client_pks)).update()

    def update(self, **kwargs):
        with transaction.atomic(using=self.db, savepoint=False):
            pks: list[Any] | None = list(self.values_list("client_id", flat=True).distinct())
            count = super().update(**kwargs)
            if "client" in kwargs or "client_id" in kwargs:
                pks = None  # moved between clients: reload them all
            if count:
                if pks is None:
                    _record(self.db, Client, clients=True)
                else:
                    self._touch_clients(pks)
        return count

    update.alters_data = True  # type: ignore[attr-defined]

    def bulk_create(self, objs, *args, **kwargs):
        with transaction.atomic(using=self.db, savepoint=False):
            created = super().bulk_create(objs, *args, **kwargs)
            if created:
                self._touch_clients(o.client_id for o in created)  # type: ignore[attr-defined]
        return created


class ResourceGrant(models.Model):
    """A row present means: this client may use this resource (a view's ``resource_name``)."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="grants", verbose_name=_("client"))
    resource = models.CharField(_("resource"), max_length=100, validators=[validate_resource])
    created = models.DateTimeField(_("created"), auto_now_add=True)

    objects = ResourceGrantQuerySet.as_manager()

    class Meta:
        verbose_name = _("resource grant")
        verbose_name_plural = _("resource grants")
        ordering = ["resource"]
        constraints = [
            models.UniqueConstraint(fields=["client", "resource"], name="drf_m2m_auth_grant_unique"),
        ]

    def __str__(self) -> str:
        return self.resource

    def save(self, *args, **kwargs):
        with _atomic(self, kwargs):
            super().save(*args, **kwargs)


class RevokedTokenQuerySet(_StampingQuerySet):
    stamp = {"tokens": True}

    def unexpired(self, now: dt.datetime | None = None):
        return self.filter(exp__gt=now or timezone.now())

    def expired(self, now: dt.datetime | None = None):
        return self.filter(exp__lte=now or timezone.now())

    def purge_expired(self, now: dt.datetime | None = None) -> int:
        """Delete entries whose token has expired anyway; returns how many."""
        count, _ = self.expired(now).delete()
        return count

    def revoke(self, jti: str, exp: dt.datetime, *, client_id: str = "", reason: str = ""):
        """Deny ``jti`` until ``exp``; idempotent. Returns ``(entry, created)``.

        Re-revoking keeps the later expiry, so a retry with a shorter ``exp`` never shortens it.
        Entries whose token has expired anyway are purged on the way, so the list stays small.
        """
        validate_jti(jti)
        if timezone.is_naive(exp):
            raise ValidationError("exp must be timezone-aware")
        with transaction.atomic(using=self.db):
            self.purge_expired()
            entry = self.select_for_update().filter(jti=jti).first()
            if entry is None:
                return self.create(jti=jti, exp=exp, client_id=client_id, reason=reason), True
            changed = []
            if exp > entry.exp:
                entry.exp = exp
                changed.append("exp")
            if client_id and not entry.client_id:
                entry.client_id = client_id
                changed.append("client_id")
            if changed:
                entry.save(update_fields=changed)
            return entry, False


class RevokedToken(models.Model):
    """The jti deny-list: one token revoked until it would have expired anyway."""

    jti = models.CharField(_("jti"), max_length=255, unique=True, validators=[validate_jti])
    client_id = models.CharField(
        _("client id"),
        max_length=255,
        blank=True,
        db_index=True,
        help_text=_("For the record only; the jti alone is matched."),
    )
    exp = models.DateTimeField(
        _("expires"), db_index=True, help_text=_("The token's exp: after it the entry is useless and is purged.")
    )
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created = models.DateTimeField(_("created"), auto_now_add=True)

    objects = RevokedTokenQuerySet.as_manager()

    class Meta:
        verbose_name = _("revoked token")
        verbose_name_plural = _("revoked tokens")
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.jti

    def save(self, *args, **kwargs):
        with _atomic(self, kwargs):
            super().save(*args, **kwargs)


class RevocationState(models.Model):
    """One row: random stamps rewritten in the same transaction as every change.

    The database is the truth; the cache generation only says "look now". A process that cannot
    reach the cache compares these stamps instead (one primary-key read per interval).
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    clients_stamp = models.BigIntegerField(default=0)
    tokens_stamp = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("revocation state")
        default_permissions = ()

    def __str__(self) -> str:
        return f"clients={self.clients_stamp} tokens={self.tokens_stamp}"


def _client_changed(sender, instance, using, **kwargs):
    _record(using, Client, clients=True)


def _grant_changed(sender, instance, using, **kwargs):
    # The grant's client gets a new revision, so processes reload just that client.
    Client.objects.using(using).filter(pk=instance.client_id).update()


def _token_changed(sender, instance, using, **kwargs):
    _record(using, RevokedToken, tokens=True)


for _signal in (post_save, post_delete):
    _signal.connect(_client_changed, sender=Client, dispatch_uid=f"drf_m2m_auth.client.{_signal}")
    _signal.connect(_grant_changed, sender=ResourceGrant, dispatch_uid=f"drf_m2m_auth.grant.{_signal}")
    _signal.connect(_token_changed, sender=RevokedToken, dispatch_uid=f"drf_m2m_auth.token.{_signal}")
