"""Clients, their resource grants, the jti deny-list and deleted clients' tombstones.

Every write goes through one funnel, ``RevocationState.objects.stamp()``: model saves and deletes
(signals, also on cascades and ``QuerySet.delete()``), and the querysets' ``update()`` and
``bulk_create()``. It stamps the database (same transaction) and sends the
``signals.revocation_changed`` signal; revocation.py (subscribed in ``AppConfig.ready()``) reloads
this process at once on commit and announces the change to the others. This module imports
nothing of the request path.

Deleting a client never widens access: a deactivated client, or one whose tokens were revoked,
leaves a ``DeletedClient`` tombstone that revocation.py honours (every token of a deactivated
client stays rejected; tokens issued before ``tokens_valid_after`` stay rejected) until the same
client id is registered again, which inherits the tombstone's cut-off.

A client is (issuer, client_id): the same client id at two trusted issuers is two clients, with
their own grants, revocation state, tombstones and jti deny-list. A row whose issuer is empty
(from before the issuer column, when several issuers were configured: nothing is guessed) has its
revocation state applied at every issuer and its grants at none, until ``m2m_set_issuer`` fills it.
"""

from __future__ import annotations

import datetime as dt
import re

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models, router
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .change_models import RevocationChange, RevocationState
from .ids import JTI_DISPLAY_LENGTH, client_id_problem, escape
from .querysets import (
    API_MAX_LENGTH,
    ISSUER_MAX_LENGTH,
    MAX_JTI_LENGTH,
    ClientQuerySet,
    ResourceGrantQuerySet,
    RevokedTokenQuerySet,
    atomic_save,
    fill_api,
    fill_issuer,
    inherit_tombstone,
    jti_fields,
    new_revision,
    record,
    validate_jti,
)

__all__ = [
    "Client",
    "ResourceGrant",
    "RevokedToken",
    "RevocationState",
    "DeletedClient",
    "new_revision",
    "MAX_JTI_LENGTH",
    "validate_client_id",
    "validate_jti",
    "validate_resource",
    "ISSUER_MAX_LENGTH",
    "RevocationChange",
]

# A resource is what a view names in ``resource_name``: no spaces, so an admin typo stands out.
RESOURCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}\Z")
validate_resource = RegexValidator(
    RESOURCE_RE, _("A resource is 1-100 characters: letters, digits and _ . : / - (no spaces).")
)


def validate_client_id(value: str) -> None:
    """Refuse empty ids, surrounding spaces, over-long ids and control/format characters."""
    problem = client_id_problem(value)
    if problem is not None:
        raise ValidationError(problem[0].upper() + problem[1:] + ".", code="invalid_client_id")


class Client(models.Model):
    """A calling service, known by its issuer and its OAuth client id."""

    issuer = models.CharField(
        _("issuer"),
        max_length=ISSUER_MAX_LENGTH,
        help_text=_(
            "The trusted issuer (the iss of its tokens) that issued this client id. Left empty, it is "
            "filled in when exactly one issuer is configured."
        ),
    )
    client_id = models.CharField(
        _("client id"),
        max_length=255,
        validators=[validate_client_id],
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
        ordering = ["client_id", "issuer"]
        constraints = [
            models.UniqueConstraint(fields=["issuer", "client_id"], name="drf_m2m_auth_client_unique"),
        ]

    def __str__(self) -> str:
        if self.name and self.name != self.client_id:
            return f"{escape(self.name)} ({escape(self.client_id)})"
        return escape(self.client_id)

    def save(self, *args, **kwargs):
        fill_issuer(self)
        self.revision = new_revision()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "revision", "updated"}
        with atomic_save(self, kwargs):
            if self._state.adding:
                inherit_tombstone(self, kwargs.get("using") or router.db_for_write(Client, instance=self))
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


class ResourceGrant(models.Model):
    """A row present means: this client may use this resource (a view's ``resource_name``) at this API.

    ``api`` is the API's identifier (``DRF_M2M_AUTH["API"]`` of the service that serves it); a
    service loads only its own API's grants, so a grant for "orders" gives nothing at "billing".
    Left empty, it is filled with this project's own API.
    """

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="grants", verbose_name=_("client"))
    api = models.CharField(
        _("API"),
        max_length=API_MAX_LENGTH,
        db_index=True,
        help_text=_("The API's identifier (its DRF_M2M_AUTH['API'], usually its audience). Empty: this project's API."),
    )
    resource = models.CharField(_("resource"), max_length=100, validators=[validate_resource])
    created = models.DateTimeField(_("created"), auto_now_add=True)

    objects = ResourceGrantQuerySet.as_manager()

    class Meta:
        verbose_name = _("resource grant")
        verbose_name_plural = _("resource grants")
        ordering = ["api", "resource"]
        constraints = [
            models.UniqueConstraint(fields=["client", "api", "resource"], name="drf_m2m_auth_grant_api_unique"),
        ]

    def __str__(self) -> str:
        return self.resource

    def save(self, *args, **kwargs):
        fill_api(self)
        with atomic_save(self, kwargs):
            super().save(*args, **kwargs)


class RevokedToken(models.Model):
    """The jti deny-list: one token revoked until it would have expired anyway."""

    # NULL, not "": an entry for every issuer (from before 0.2.0) is not an issuer named "".
    issuer = models.CharField(  # noqa: DJ001
        _("issuer"),
        max_length=ISSUER_MAX_LENGTH,
        null=True,
        blank=True,
        help_text=_("The jti is denied in this issuer's tokens only; empty (older entries): at every issuer."),
    )
    jti_sha256 = models.CharField(
        _("jti SHA-256"), max_length=64, db_index=True, help_text=_("The digest of the jti; what is matched.")
    )
    jti_display = models.CharField(
        _("jti"), max_length=JTI_DISPLAY_LENGTH, blank=True, help_text=_("The jti, escaped and shortened for reading.")
    )
    client_id = models.CharField(
        _("client id"),
        max_length=255,
        blank=True,
        db_index=True,
        help_text=_("For the record only; the jti (at its issuer) is matched."),
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
        constraints = [
            models.UniqueConstraint(fields=["issuer", "jti_sha256"], name="drf_m2m_auth_revoked_unique"),
        ]

    def __str__(self) -> str:
        return self.jti_display or self.jti_sha256

    def save(self, *args, **kwargs):
        with atomic_save(self, kwargs):
            super().save(*args, **kwargs)

    def set_jti(self, jti: str) -> None:
        validate_jti(jti)
        for name, value in jti_fields(jti).items():
            setattr(self, name, value)


class DeletedClient(models.Model):
    """A deleted client's revocation state, so that deleting never widens access.

    Written when a deactivated client, or one with ``tokens_valid_after``, is deleted. While it
    exists: every token of a client that was deactivated is rejected (``client_inactive``), and
    tokens issued before ``tokens_valid_after`` are rejected (``token_revoked``); newer tokens of a
    client that was active are treated as an unregistered client's. Registering the client id
    again removes the tombstone and carries its cut-off into the new client's
    ``tokens_valid_after``, so no token issued before the deletion comes back either way.
    """

    issuer = models.CharField(  # noqa: DJ001  (NULL: every issuer, as for RevokedToken.issuer)
        _("issuer"),
        max_length=ISSUER_MAX_LENGTH,
        null=True,
        blank=True,
        help_text=_("Empty: the client had no issuer recorded, and the tombstone applies at every issuer."),
    )
    client_id = models.CharField(_("client id"), max_length=255)
    was_active = models.BooleanField(_("was active"))
    tokens_valid_after = models.DateTimeField(_("tokens valid after"), null=True, blank=True)
    deleted = models.DateTimeField(_("deleted"), default=timezone.now)

    class Meta:
        verbose_name = _("deleted client (tombstone)")
        verbose_name_plural = _("deleted clients (tombstones)")
        ordering = ["-deleted"]
        constraints = [
            models.UniqueConstraint(fields=["issuer", "client_id"], name="drf_m2m_auth_tombstone_unique"),
        ]

    def __str__(self) -> str:
        return escape(self.client_id)

    @property
    def cut_off(self) -> dt.datetime | None:
        """Tokens issued before this moment stay rejected after re-registration."""
        if not self.was_active:
            return self.deleted
        return self.tokens_valid_after


def _client_changed(sender, instance, using, **kwargs):
    # A client, or a tombstone (issuer None: every issuer), changed: re-read that client id there.
    record(using, Client, clients=True, keys=[(instance.issuer or "", instance.client_id)])


def _client_deleted(sender, instance, using, **kwargs):
    if not instance.is_active or instance.tokens_valid_after is not None:
        DeletedClient.objects.using(using).update_or_create(
            issuer=instance.issuer or None,
            client_id=instance.client_id,
            defaults={
                "was_active": instance.is_active,
                "tokens_valid_after": instance.tokens_valid_after,
                "deleted": timezone.now(),
            },
        )
    record(using, Client, clients=True, keys=[(instance.issuer or "", instance.client_id)])


def _grant_changed(sender, instance, using, **kwargs):
    # The grant's client gets a new revision, so processes reload just that client.
    Client.objects.using(using).filter(pk=instance.client_id).update()


def _token_changed(sender, instance, using, **kwargs):
    record(using, RevokedToken, tokens=True, keys=[(instance.issuer or "", instance.jti_sha256)])


post_save.connect(_client_changed, sender=Client, dispatch_uid="drf_m2m_auth.client.post_save")
post_delete.connect(_client_deleted, sender=Client, dispatch_uid="drf_m2m_auth.client.post_delete")
post_delete.connect(_client_changed, sender=DeletedClient, dispatch_uid="drf_m2m_auth.tombstone.post_delete")
for _signal in (post_save, post_delete):
    _signal.connect(_grant_changed, sender=ResourceGrant, dispatch_uid=f"drf_m2m_auth.grant.{_signal}")
    _signal.connect(_token_changed, sender=RevokedToken, dispatch_uid=f"drf_m2m_auth.token.{_signal}")
