"""What the admin shows and asks about grants across a fleet's APIs, and a client's revocation state.

A grant belongs to an API (``ResourceGrant.api``). The grant form fills in this project's own API
(``DRF_M2M_AUTH["API"]``) and lets it be changed; a control plane that serves no API of its own
(the API cannot be determined) must name it on every grant. ``admin.py`` registers the admins.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .conf import own_api
from .ids import escape
from .models import Client, DeletedClient, ResourceGrant, RevokedToken

__all__ = ["ResourceGrantForm", "ResourceGrantAdminForm", "grants_by_api", "revocation_state"]

SEPARATOR = " · "


API_REQUIRED = _(
    "Say which API this grant is for: this project's DRF_M2M_AUTH['API'] cannot be determined "
    "(several audiences, or none), so no API is filled in for you."
)


class ResourceGrantForm(forms.ModelForm):
    """The API defaults to this project's own; without one it is required. The unique check sees
    the filled value."""

    class Meta:
        model = ResourceGrant
        fields: tuple[str, ...] = ("api", "resource")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        api = self.fields["api"]
        mine = own_api()
        api.required = not mine
        if mine:
            api.help_text = _("The API's identifier; empty: this project's own, %(api)s.") % {"api": mine}
            if not self.instance.pk:
                api.initial = mine
        else:
            api.help_text = _("The API's identifier (the DRF_M2M_AUTH['API'] of the service that serves it).")
            api.error_messages["required"] = API_REQUIRED

    def clean_api(self):
        api = (self.cleaned_data.get("api") or "").strip() or own_api()
        if not api:
            raise forms.ValidationError(API_REQUIRED, code="required")
        return api


class ResourceGrantAdminForm(ResourceGrantForm):
    class Meta(ResourceGrantForm.Meta):
        fields = ("client", "api", "resource")


def grants_by_api(grants: Iterable[Any], first: str = "") -> str:
    """ "orders: a, b · billing: c": the resources per API, ``first`` (this project's API) first."""
    per_api: dict[str, list[str]] = {}
    for grant in grants:
        per_api.setdefault(grant.api, []).append(grant.resource)
    apis = sorted(per_api, key=lambda api: (api != first, api))
    return SEPARATOR.join(f"{escape(api)}: {', '.join(sorted(per_api[api]))}" for api in apis)


def revocation_state(client: Client) -> str:
    """Active or not, the cut-off, the unexpired deny-list entries naming it, its tombstone: what
    every API of the fleet applies to this client."""
    if client.pk is None:
        return "-"
    parts = [str(_("active")) if client.is_active else str(_("inactive: every API rejects all its tokens"))]
    if client.tokens_valid_after is not None:
        parts.append(str(_("tokens issued before %(when)s rejected")) % {"when": client.tokens_valid_after.isoformat()})
    else:
        parts.append(str(_("no cut-off (tokens valid after: none)")))
    denied = RevokedToken.objects.unexpired(timezone.now()).filter(
        Q(issuer=client.issuer) | Q(issuer__isnull=True), client_id=client.client_id
    )
    parts.append(str(_("%(count)d unexpired revoked token(s) (jti) name it")) % {"count": denied.count()})
    tomb = (
        DeletedClient.objects.filter(Q(issuer=client.issuer) | Q(issuer__isnull=True), client_id=client.client_id)
        .order_by("-deleted")
        .first()
    )
    if tomb is None:
        parts.append(str(_("no tombstone")))
    else:
        cut = tomb.cut_off.isoformat() if tomb.cut_off else "-"
        parts.append(
            str(_("tombstone of %(when)s (tokens before %(cut)s rejected)"))
            % {"when": tomb.deleted.isoformat(), "cut": cut}
        )
    return "; ".join(parts)
