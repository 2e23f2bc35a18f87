"""The querysets and managers of models.py: every bulk write stamps the revocation state.

Bulk writes skip ``save()`` and its signals, so ``update()`` and ``bulk_create()`` stamp
``RevocationState`` themselves, in the same transaction; ``RevocationStateManager.stamp`` is the
one funnel, and it sends ``signals.revocation_changed``. Sibling models are looked up in the app
registry (models.py imports this module, not the other way round).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, router, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .changes import MAX_KEYS, Change, allocate, keys_or_none, write_changes
from .ids import JTI_DISPLAY_LENGTH, escape, jti_digest
from .signals import revocation_changed

__all__ = [
    "ClientQuerySet",
    "ResourceGrantQuerySet",
    "RevokedTokenQuerySet",
    "RevocationStateManager",
    "MAX_JTI_LENGTH",
    "ISSUER_MAX_LENGTH",
    "API_MAX_LENGTH",
    "fill_api",
    "atomic_save",
    "fill_issuer",
    "inherit_tombstone",
    "jti_fields",
    "new_revision",
    "record",
    "stamp_version",
    "STAMP_STEP",
    "validate_jti",
]

ISSUER_MAX_LENGTH = 255
API_MAX_LENGTH = 255
_ONLY: Any = object()  # RevokedTokenQuerySet.revoke(issuer=...) left out: the only configured issuer
MAX_JTI_LENGTH = 8192  # MAX_TOKEN_BYTES' default: no token that passes carries a longer jti


def validate_jti(value: str) -> None:
    """RFC 7519 4.1.7: any string. Only an empty one (or an absurdly long one) is refused."""
    if not isinstance(value, str) or not value:
        raise ValidationError(_("A jti cannot be empty."), code="invalid_jti")
    if len(value) > MAX_JTI_LENGTH:
        raise ValidationError(_("A jti this long cannot come from an accepted token."), code="invalid_jti")


STAMP_STEP = 1 << 20  # a stamp is (changes so far) * STAMP_STEP + random low bits


def stamp_version(clients_stamp: int | None, tokens_stamp: int | None) -> int | None:
    """The revocation version a pair of stamps stands for: it grows with every committed change.

    Each stamp counts its changes in its high bits (``stamp // STAMP_STEP``), so the sum of both
    counts is larger after any change; the status view and ``m2m_drill`` compare these numbers.
    """
    if clients_stamp is None or tokens_stamp is None:
        return None
    return clients_stamp // STAMP_STEP + tokens_stamp // STAMP_STEP


def _advanced(field: str) -> Any:
    """The next stamp, computed by the database in the writer's UPDATE (row-locked: no lost count).

    The low bits are fresh random ones, so a count reused after a rolled-back change is still a
    different stamp (processes reload on any difference).
    """
    return models.F(field) - models.F(field) % STAMP_STEP + STAMP_STEP + secrets.randbits(20)


def new_revision() -> int:
    """A random stamp, never an increment: two admins saving stale forms cannot collide."""
    return secrets.randbits(62)


def _model(model, name: str):
    """A sibling model of this app (looked up in the registry: models.py imports this module)."""
    return model._meta.apps.get_model(model._meta.app_label, name)


def record(
    using: str | None,
    model,
    *,
    clients: bool = False,
    tokens: bool = False,
    keys: list[tuple[str, str]] | None = None,
) -> None:
    """Number a change to ``model``'s rows (same transaction). ``keys``: the (issuer, client id or
    jti digest) pairs it touched; None: a bulk change, the whole section is re-read."""
    state = _model(model, "RevocationState")
    kind = "client" if clients else "token"
    changes = None if keys is None else [(kind, issuer, key) for issuer, key in keys]
    state.objects.stamp(using or router.db_for_write(model), clients=clients, tokens=tokens, changes=changes)


def atomic_save(instance, kwargs):
    """save() runs in a transaction, so the post_save stamp commits (or rolls back) with the row."""
    using = kwargs.get("using") or router.db_for_write(type(instance), instance=instance)
    return transaction.atomic(using=using, savepoint=False)


class _StampingQuerySet(models.QuerySet):
    """Bulk writes skip save() and its signals, so they stamp the revocation state themselves,
    in the same transaction (revocation.py reloads on the stamp)."""

    stamp: dict[str, bool] = {}
    key_fields: tuple[str, str] = ("issuer", "client_id")  # what identifies a row's change

    def _prepare_update(self, kwargs: dict[str, Any]) -> None:
        pass

    def update(self, **kwargs):
        self._prepare_update(kwargs)
        with transaction.atomic(using=self.db, savepoint=False):
            keys = None
            if not any(field in kwargs for field in self.key_fields):  # a key moved: re-read the section
                keys = keys_or_none(self.order_by().values_list(*self.key_fields)[: MAX_KEYS + 1])
            count = super().update(**kwargs)
            if count:
                record(self.db, self.model, keys=keys, **self.stamp)
        return count

    update.alters_data = True  # type: ignore[attr-defined]

    def _prepare_create(self, objs) -> None:
        pass

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        with transaction.atomic(using=self.db, savepoint=False):
            self._prepare_create(objs)
            created = super().bulk_create(objs, *args, **kwargs)
            if created:
                keys = keys_or_none((getattr(o, self.key_fields[0]), getattr(o, self.key_fields[1])) for o in created)
                record(self.db, self.model, keys=keys, **self.stamp)
        return created


class ClientQuerySet(_StampingQuerySet):
    stamp = {"clients": True}

    def _prepare_create(self, objs) -> None:
        for obj in objs:
            fill_issuer(obj)
            inherit_tombstone(obj, self.db)

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


class ResourceGrantQuerySet(models.QuerySet):
    def _touch_clients(self, client_pks) -> None:
        _model(self.model, "Client").objects.using(self.db).filter(pk__in=set(client_pks)).update()

    def update(self, **kwargs):
        with transaction.atomic(using=self.db, savepoint=False):
            pks: list[Any] | None = list(self.values_list("client_id", flat=True).distinct())
            count = super().update(**kwargs)
            if "client" in kwargs or "client_id" in kwargs:
                pks = None  # moved between clients: reload them all
            if count:
                if pks is None:
                    record(self.db, _model(self.model, "Client"), clients=True)
                else:
                    self._touch_clients(pks)
        return count

    update.alters_data = True  # type: ignore[attr-defined]

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for obj in objs:
            fill_api(obj)
        with transaction.atomic(using=self.db, savepoint=False):
            created = super().bulk_create(objs, *args, **kwargs)
            if created:
                self._touch_clients(o.client_id for o in created)  # type: ignore[attr-defined]
        return created


class RevokedTokenQuerySet(_StampingQuerySet):
    stamp = {"tokens": True}
    key_fields = ("issuer", "jti_sha256")

    def unexpired(self, now: dt.datetime | None = None):
        return self.filter(exp__gt=now or timezone.now())

    def expired(self, now: dt.datetime | None = None):
        return self.filter(exp__lte=now or timezone.now())

    def purge_expired(self, now: dt.datetime | None = None) -> int:
        """Delete entries whose token has expired anyway; returns how many."""
        count, _ = self.expired(now).delete()
        return count

    def create(self, **kwargs):
        """``create(jti=..., exp=...)``: the jti is stored as its digest and an escaped display."""
        jti = kwargs.pop("jti", None)
        if jti is not None:
            kwargs.update(jti_fields(jti))
        return super().create(**kwargs)

    def denying(self, jti: str, issuer: str | None = None):
        """The entries that deny ``jti`` (matched by digest): at ``issuer`` (its own and those for
        every issuer), or at any issuer when ``issuer`` is None."""
        found = self.filter(jti_sha256=jti_digest(jti))
        if issuer is not None:
            found = found.filter(models.Q(issuer=issuer) | models.Q(issuer__isnull=True))
        return found

    def revoke(self, jti: str, exp: dt.datetime, *, issuer: Any = _ONLY, client_id: str = "", reason: str = ""):
        """Deny ``jti`` in ``issuer``'s tokens until ``exp``; idempotent. Returns ``(entry, created)``.

        The same jti from another issuer is another token. ``issuer`` may be left out only when
        exactly one issuer is configured (ValidationError otherwise: nothing is guessed); None,
        said explicitly, denies the jti at every issuer. Re-revoking keeps the later expiry, so a retry with
        a shorter ``exp`` never shortens it. Entries whose token has expired anyway are purged on
        the way, so the list stays small.
        """
        validate_jti(jti)
        if timezone.is_naive(exp):
            raise ValidationError("exp must be timezone-aware")
        if issuer is _ONLY:
            from .revocation_issuers import require_issuer

            try:
                issuer = require_issuer(None)
            except ValueError as exc:
                raise ValidationError({"issuer": str(exc)}, code="issuer_required") from exc
        issuer = issuer or None
        with transaction.atomic(using=self.db):
            self.purge_expired()
            entry = self.select_for_update().filter(jti_sha256=jti_digest(jti), issuer=issuer).first()
            if entry is None:
                return self.create(jti=jti, exp=exp, issuer=issuer, client_id=client_id, reason=reason), True
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


class RevocationStateManager(models.Manager):
    def stamp(
        self, using: str, *, clients: bool = False, tokens: bool = False, changes: list[Change] | None = None
    ) -> int | None:
        """Call inside the writer's transaction after any change to clients, grants, tombstones or
        the deny-list (the models do it for you). Allocates the change's number now (changes.py),
        so it commits or rolls back with the change, records ``changes`` (None: re-read the whole
        sections), sends ``signals.revocation_changed`` and returns the number."""
        values = {}
        if clients:
            values["clients_stamp"] = _advanced("clients_stamp")
        if tokens:
            values["tokens_stamp"] = _advanced("tokens_stamp")
        if not values:
            return None
        sequence = allocate(self.model, using, values)
        if changes is None:
            changes = [(kind, "", "") for kind, on in (("clients", clients), ("tokens", tokens)) if on]
        write_changes(_model(self.model, "RevocationChange"), self.model, using, sequence, changes)
        revocation_changed.send(sender=self.model, using=using, clients=clients, tokens=tokens, sequence=sequence)
        return sequence


def jti_fields(jti: str) -> dict[str, str]:
    return {"jti_sha256": jti_digest(jti), "jti_display": escape(jti, JTI_DISPLAY_LENGTH)}


def fill_api(grant: Any) -> None:
    """A grant saved without an API gets this project's own (``DRF_M2M_AUTH["API"]``)."""
    if grant.api:
        return
    from django.core.exceptions import ImproperlyConfigured

    from .conf import m2m_settings

    try:
        grant.api = m2m_settings.API
    except ImproperlyConfigured as exc:
        raise ValidationError({"api": f"Say which API this grant is for: {exc}"}, code="api_required") from exc


def fill_issuer(client: Any) -> None:
    """A client saved without an issuer gets the only configured one; with several (or none),
    ValidationError: nothing is guessed."""
    if client.issuer:
        return
    from .revocation_issuers import require_issuer

    try:
        client.issuer = require_issuer(None)
    except ValueError as exc:
        raise ValidationError({"issuer": str(exc)}, code="issuer_required") from exc


def inherit_tombstone(client: Any, using: str) -> None:
    """A re-registered client keeps the deleted one's cut-off: deletion never re-enables a token.

    Its own issuer's tombstone is consumed; one without an issuer (it applies at every issuer)
    lends its cut-off and stays for the other issuers."""
    tombstones = _model(type(client), "DeletedClient").objects.using(using).filter(client_id=client.client_id)
    for tombstone in tombstones.filter(models.Q(issuer=client.issuer) | models.Q(issuer__isnull=True)):
        cut_off = tombstone.cut_off
        if cut_off is not None and (client.tokens_valid_after is None or client.tokens_valid_after < cut_off):
            client.tokens_valid_after = cut_off
        if tombstone.issuer:
            tombstone.delete()
