"""Admin for clients, their grants and the jti deny-list, with the revocation actions.

Every action goes through the querysets' ``update()`` (one generation bump for the batch) and
writes one LogEntry per object, so "who revoked what, when" is in the admin's history.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import Client, ResourceGrant, RevokedToken


def _locked(queryset) -> list[Client]:
    """The selected clients, row-locked. A search across grants makes the changelist's queryset
    DISTINCT, and PostgreSQL refuses FOR UPDATE with DISTINCT: lock by primary key instead."""
    pks = list(queryset.values_list("pk", flat=True))
    return list(Client.objects.filter(pk__in=pks).select_for_update())


class ResourceGrantInline(admin.TabularInline):
    model = ResourceGrant
    extra = 1
    fields = ("resource", "created")
    readonly_fields = ("created",)


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ("client_id", "name", "is_active", "resources_display", "tokens_valid_after", "updated")
    list_display_links = ("client_id", "name")
    list_filter = ("is_active",)
    search_fields = ("client_id", "name", "description", "grants__resource")
    readonly_fields = ("tokens_valid_after", "created", "updated")
    fields = ("client_id", "name", "description", "is_active", "tokens_valid_after", "created", "updated")
    inlines = [ResourceGrantInline]
    actions = ["revoke_tokens_now", "deactivate", "activate"]
    ordering = ("client_id",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("grants")

    @admin.display(description=_("resources"))
    def resources_display(self, obj: Client) -> str:
        return ", ".join(sorted(g.resource for g in obj.grants.all())) or "-"

    def _apply(self, request, queryset, method: str, log: str, done: str) -> None:
        # Lock the rows so the LogEntries name exactly the clients the update touched.
        with transaction.atomic():
            clients = _locked(queryset)
            count = getattr(Client.objects.filter(pk__in=[c.pk for c in clients]), method)()
            for client in clients:
                self.log_change(request, client, log)
        self.message_user(request, done % {"count": count}, messages.SUCCESS)

    @admin.action(description=_("Revoke all tokens now"), permissions=["change"])
    def revoke_tokens_now(self, request, queryset):
        now = timezone.now()
        with transaction.atomic():
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
            % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Deactivate (reject all their tokens)"), permissions=["change"])
    def deactivate(self, request, queryset):
        self._apply(request, queryset, "deactivate", "Deactivated.", str(_("Deactivated %(count)d client(s).")))

    @admin.action(description=_("Activate"), permissions=["change"])
    def activate(self, request, queryset):
        self._apply(request, queryset, "activate", "Activated.", str(_("Activated %(count)d client(s).")))


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


@admin.register(RevokedToken)
class RevokedTokenAdmin(admin.ModelAdmin):
    list_display = ("jti", "client_id", "exp", "reason", "created")
    list_filter = (ExpiredFilter,)
    search_fields = ("jti", "client_id", "reason")
    readonly_fields = ("created",)
    date_hierarchy = "created"
    actions = ["purge_expired"]

    @admin.action(description=_("Purge expired entries (all of them, not only the selected)"), permissions=["delete"])
    def purge_expired(self, request, queryset):
        with transaction.atomic():
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
