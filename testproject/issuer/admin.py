"""Admin for the local issuer: APIs, clients with their grants, signing keys (read-only)."""

from django.contrib import admin, messages

from . import keys, statuslists
from .models import Api, ClientGrant, IssuedToken, OAuthClient, SigningKey


@admin.register(Api)
class ApiAdmin(admin.ModelAdmin):
    list_display = ("identifier", "name", "scopes", "token_lifetime")
    search_fields = ("identifier", "name")


class ClientGrantInline(admin.TabularInline):
    model = ClientGrant
    extra = 0


@admin.register(OAuthClient)
class OAuthClientAdmin(admin.ModelAdmin):
    list_display = ("client_id", "name", "grant_types", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("client_id", "name")
    readonly_fields = ("created_at",)
    inlines = [ClientGrantInline]
    actions = ["reset_secret"]

    def save_model(self, request, obj, form, change):
        if not obj.secret_hash:
            self._show_secret(request, obj, obj.set_secret())
        super().save_model(request, obj, form, change)

    @admin.action(description="Reset the secret of the selected clients (shown once)")
    def reset_secret(self, request, queryset):
        for client in queryset:
            secret = client.set_secret()
            client.save(update_fields=["secret_hash"])
            self._show_secret(request, client, secret)

    def _show_secret(self, request, client, secret):
        # Shown once to the operator, like Auth0's dashboard; only its digest is stored.
        self.message_user(request, f"Client secret for {client.client_id}: {secret}  (copy it now)", messages.WARNING)


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    list_display = ("kid", "state", "created_at", "retired_at")
    list_filter = ("state",)
    fields = ("kid", "state", "created_at", "retired_at")
    readonly_fields = fields
    actions = ["rotate"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Rotate: the next key starts signing (selection ignored)")
    def rotate(self, request, queryset):
        old, new = keys.rotate()
        self.message_user(request, f"Signing key rotated: {old} -> {new}")


@admin.register(IssuedToken)
class IssuedTokenAdmin(admin.ModelAdmin):
    """Minted tokens and their status-list slot; the actions change what the next list says."""

    list_display = ("jti", "client", "audience", "list_number", "idx", "status", "expires_at")
    list_filter = ("status", "list_number")
    search_fields = ("jti", "client__client_id", "audience")
    fields = ("jti", "client", "audience", "list_number", "idx", "status", "issued_at", "expires_at")
    readonly_fields = fields
    actions = ["revoke", "suspend", "mark_valid"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def _set(self, request, queryset, status, verb):
        count = queryset.update(status=status)
        self.message_user(
            request, f"{count} token(s) {verb}: APIs refuse them within {statuslists.list_ttl()} s (the list's ttl)."
        )

    @admin.action(description="Revoke the selected tokens (status list: INVALID)")
    def revoke(self, request, queryset):
        self._set(request, queryset, IssuedToken.INVALID, "revoked")

    @admin.action(description="Suspend the selected tokens (status list: SUSPENDED)")
    def suspend(self, request, queryset):
        self._set(request, queryset, IssuedToken.SUSPENDED, "suspended")

    @admin.action(description="Mark the selected tokens valid again")
    def mark_valid(self, request, queryset):
        self._set(request, queryset, IssuedToken.VALID, "marked valid")
