"""Admin for clients, their grants (per API), the jti deny-list and deleted clients' tombstones.

One admin for a fleet: grants of every API, filtered by API; a client's page shows its grants
across APIs and its revocation state, which every API applies (admin_grants.py).

Every action goes through the querysets' ``update()`` (one generation bump for the batch) and
writes one LogEntry per object, so "who revoked what, when" is in the admin's history. Every
message that changes access says how soon which processes see it (``revocation.announcement``).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import router, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import revocation
from .admin_grants import ResourceGrantAdminForm, ResourceGrantForm, grants_by_api, revocation_state
from .conf import own_api
from .ids import escape, jti_digest
from .models import MAX_JTI_LENGTH, Client, DeletedClient, ResourceGrant, RevokedToken, validate_jti
from .revocation_issuers import only_issuer, trusted_issuers

__all__ = ["ClientAdmin", "ResourceGrantAdmin", "RevokedTokenAdmin", "DeletedClientAdmin", "propagation_text"]


def propagation_text() -> str:
    """How soon which processes see a change just committed here, given the configured cache."""
    info = revocation.announcement()
    if info["announced"]:
        return (
            f"Every process sharing the cache {info['cache']!r} sees it within about "
            f"{info['other_processes_within_s']:g} s."
        )
    later = info["other_processes_within_s"]
    when = f"within {later:g} s (REVOCATION_DB_CHECK_INTERVAL)" if later else "only when they restart"
    if info["cache"] is None:
        why = "no shared cache is configured (CACHE is None)"
    elif info["cross_process_cache"]:
        why = f"the shared cache {info['cache']!r} could not be reached"
    else:
        why = f"the cache {info['cache']!r} is private to each process"
    return f"This process sees it now; other processes see it {when}, because {why}."


def _locked(queryset) -> list[Client]:
    """The selected clients, row-locked. A search across grants makes the changelist's queryset
    DISTINCT, and PostgreSQL refuses FOR UPDATE with DISTINCT: lock by primary key instead."""
    pks = list(queryset.values_list("pk", flat=True))
    return list(Client.objects.filter(pk__in=pks).select_for_update())


def _issuer_choices(field: Any, issuers: list[str]) -> None:
    """The configured issuers; with exactly one it is preselected and may be left out."""
    field.choices = [("", "---------"), *((i, i) for i in issuers)]
    if len(issuers) == 1:
        field.initial = issuers[0]
        field.required = False


class ClientForm(forms.ModelForm):
    """The issuer is chosen among the configured ones (a client is (issuer, client_id)); an existing
    client keeps its issuer listed even if it is no longer configured."""

    issuer = forms.ChoiceField(
        label=_("issuer"),
        help_text=_("The trusted issuer (DRF_M2M_AUTH) whose tokens name this client id."),
    )

    class Meta:
        model = Client
        fields = ("issuer", "client_id", "name", "description", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = list(trusted_issuers())
        current = self.instance.issuer if self.instance.pk else None
        if current and current not in choices:
            choices.append(current)
        _issuer_choices(self.fields["issuer"], choices)

    def clean_issuer(self):
        return self.cleaned_data["issuer"] or only_issuer() or ""


class ResourceGrantInline(admin.TabularInline):
    model = ResourceGrant
    form = ResourceGrantForm
    extra = 1
    fields = ("api", "resource", "created")
    readonly_fields = ("created",)


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    form = ClientForm
    list_display = (
        "client_id",
        "issuer_display",
        "name",
        "is_active",
        "resources_display",
        "tokens_valid_after",
        "updated",
    )
    list_display_links = ("client_id", "name")
    list_filter = ("issuer", "is_active", ("grants__api", admin.AllValuesFieldListFilter))
    search_fields = ("client_id", "issuer", "name", "description", "grants__resource")
    readonly_fields = ("tokens_valid_after", "revocation_state_display", "created", "updated")
    fields = (
        "issuer",
        "client_id",
        "name",
        "description",
        "is_active",
        "tokens_valid_after",
        "revocation_state_display",
        "created",
        "updated",
    )
    inlines = [ResourceGrantInline]
    actions = ["revoke_tokens_now", "deactivate", "activate"]
    ordering = ("client_id",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("grants")

    @admin.display(description=_("resources (per API)"))
    def resources_display(self, obj: Client) -> str:
        if not obj.issuer:
            return str(_("none at any issuer until its issuer is set (m2m_set_issuer)"))
        return grants_by_api(obj.grants.all(), first=own_api()) or "-"

    @admin.display(description=_("revocation state (at every API)"))
    def revocation_state_display(self, obj: Client) -> str:
        return revocation_state(obj)

    @admin.display(description=_("issuer"), ordering="issuer")
    def issuer_display(self, obj: Client) -> str:
        return obj.issuer or str(_("(none yet: revocation applies at every issuer)"))

    def _apply(self, request, queryset, method: str, log: str, done: str) -> None:
        # Lock the rows so the LogEntries name exactly the clients the update touched.
        with transaction.atomic(using=router.db_for_write(Client)):
            clients = _locked(queryset)
            count = getattr(Client.objects.filter(pk__in=[c.pk for c in clients]), method)()
            for client in clients:
                self.log_change(request, client, log)
        self.message_user(request, f"{done % {'count': count}} {propagation_text()}", messages.SUCCESS)

    @admin.action(description=_("Revoke all tokens now"), permissions=["change"])
    def revoke_tokens_now(self, request, queryset):
        now = timezone.now()
        with transaction.atomic(using=router.db_for_write(Client)):
            clients = _locked(queryset)
            count = Client.objects.filter(pk__in=[c.pk for c in clients]).revoke_tokens(now)
            for client in clients:
                self.log_change(request, client, f"Revoked all tokens issued before {now.isoformat()}.")
        self.message_user(
            request,
            ngettext(
                "Revoked every token of %(count)d client issued before now.",
                "Revoked every token of %(count)d clients issued before now.",
                count,
            )
            % {"count": count}
            + " "
            + propagation_text(),
            messages.SUCCESS,
        )

    @admin.action(description=_("Deactivate (reject all their tokens)"), permissions=["change"])
    def deactivate(self, request, queryset):
        self._apply(request, queryset, "deactivate", "Deactivated.", str(_("Deactivated %(count)d client(s).")))

    @admin.action(description=_("Activate"), permissions=["change"])
    def activate(self, request, queryset):
        self._apply(request, queryset, "activate", "Activated.", str(_("Activated %(count)d client(s).")))

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)  # the client and its grants are saved
        self.message_user(request, propagation_text(), messages.INFO)

    # The delete confirmations (templates/admin/drf_m2m_auth/client/) say what deletion does.
    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        self._deleted_notice(request, [obj])

    def delete_queryset(self, request, queryset):
        clients = list(queryset)
        super().delete_queryset(request, queryset)
        self._deleted_notice(request, clients)

    def _deleted_notice(self, request, clients) -> None:
        kept = [c for c in clients if not c.is_active or c.tokens_valid_after is not None]
        if kept:
            names = ", ".join(str(c) for c in kept)
            self.message_user(
                request,
                f"Tombstone kept for {names}: their revoked tokens stay rejected. {propagation_text()}",
                messages.WARNING,
            )


@admin.register(ResourceGrant)
class ResourceGrantAdmin(admin.ModelAdmin):
    """Every API's grants in one list (a fleet's control plane), filtered by API."""

    form = ResourceGrantAdminForm
    list_display = ("client_display", "issuer_display", "api", "resource", "created")
    list_filter = ("api",)
    search_fields = ("client__client_id", "resource")
    list_select_related = ("client",)
    autocomplete_fields = ("client",)
    ordering = ("api", "client__client_id", "resource")

    @admin.display(description=_("client"), ordering="client__client_id")
    def client_display(self, obj: ResourceGrant) -> str:
        return escape(obj.client.client_id)

    @admin.display(description=_("issuer"), ordering="client__issuer")
    def issuer_display(self, obj: ResourceGrant) -> str:
        return escape(obj.client.issuer) or "-"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        self.message_user(request, propagation_text(), messages.INFO)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        self.message_user(request, propagation_text(), messages.INFO)


@admin.register(DeletedClient)
class DeletedClientAdmin(admin.ModelAdmin):
    """Read only: a tombstone goes away when its client id is registered again."""

    list_display = ("client_id", "issuer", "was_active", "tokens_valid_after", "deleted")
    list_filter = ("issuer",)
    search_fields = ("client_id", "issuer")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ExpiredFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", _("still denying (not expired)")), ("expired", _("expired (purgeable)"))]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.unexpired()
        if self.value() == "expired":
            return queryset.expired()
        return queryset


class RevokedTokenForm(forms.ModelForm):
    """The jti is typed (or pasted) as the token carries it; only its digest is matched."""

    jti = forms.CharField(
        label=_("jti"),
        max_length=MAX_JTI_LENGTH,
        strip=False,
        validators=[validate_jti],
        help_text=_("The token's jti claim, exactly (any characters)."),
    )

    issuer = forms.ChoiceField(label=_("issuer"), help_text=_("The jti is denied in this issuer's tokens only."))

    class Meta:
        model = RevokedToken
        fields = ("issuer", "client_id", "exp", "reason")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _issuer_choices(self.fields["issuer"], trusted_issuers())

    def clean_issuer(self):
        return self.cleaned_data["issuer"] or only_issuer() or ""

    def save(self, commit=True):
        self.instance.set_jti(self.cleaned_data["jti"])
        return super().save(commit)


@admin.register(RevokedToken)
class RevokedTokenAdmin(admin.ModelAdmin):
    list_display = ("jti_display", "issuer", "client_id", "exp", "reason", "created")
    list_filter = (ExpiredFilter, "issuer")
    search_fields = ("jti_display", "issuer", "client_id", "reason")
    readonly_fields = ("jti_display", "jti_sha256", "issuer", "created")
    date_hierarchy = "created"
    actions = ["purge_expired"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = RevokedTokenForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:  # the issuer is chosen when the entry is made
            return ("jti_display", "jti_sha256", "created")
        return self.readonly_fields

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("jti", "issuer", "client_id", "exp", "reason")
        return ("jti_display", "jti_sha256", "issuer", "client_id", "exp", "reason", "created")

    def get_search_results(self, request, queryset, search_term):
        found, distinct = super().get_search_results(request, queryset, search_term)
        if search_term:  # an exact jti, whatever its characters, is found by its digest
            found = found | queryset.filter(jti_sha256=jti_digest(search_term))
        return found, distinct

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        self.message_user(request, propagation_text(), messages.INFO)

    @admin.action(description=_("Purge expired entries (all of them, not only the selected)"), permissions=["delete"])
    def purge_expired(self, request, queryset):
        with transaction.atomic(using=router.db_for_write(RevokedToken)):
            expired = list(RevokedToken.objects.expired().select_for_update())
            if hasattr(self, "log_deletions"):  # Django >= 5.1
                self.log_deletions(request, expired)  # type: ignore[arg-type]  # any iterable works
            else:  # pragma: no cover - Django 4.2
                for entry in expired:
                    self.log_deletion(request, entry, str(entry))  # type: ignore[attr-defined,unused-ignore]
            count = RevokedToken.objects.filter(pk__in=[e.pk for e in expired]).delete()[0]
        self.message_user(
            request,
            ngettext("Purged %(count)d expired entry.", "Purged %(count)d expired entries.", count) % {"count": count},
            messages.SUCCESS,
        )
