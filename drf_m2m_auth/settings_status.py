"""The Token Status List and status view rows of conf.SETTINGS (split from settings_table.py by size).

Read them through :mod:`drf_m2m_auth.conf` (``conf.SETTINGS``).
"""

from __future__ import annotations

from . import validation as v
from .settings_row import Setting

__all__: list[str] = []  # public through drf_m2m_auth.conf

STATUS_LIST_SETTINGS: dict[str, Setting] = {
    # Token Status List (draft-ietf-oauth-status-list-20): revocation that starts at the issuer.
    "STATUS_LIST": Setting(
        "if_present",
        v.choice("if_present", "required", "ignore"),
        "E026",
        """Whether tokens' ``status.status_list`` claims are checked:
``"if_present"`` checks a token that carries one; ``"required"`` also refuses a token without one
(401 ``token_status_missing``); ``"ignore"`` never checks. See :doc:`/guide/issuer-revocation`.""",
    ),
    "STATUS_LIST_HOSTS": Setting(
        None,
        v.status_list_hosts,
        "E027",
        """Hosts a token's status list ``uri`` may name: a list, or a dict
``{issuer: [host, ...]}``. ``None`` allows each issuer's own host only. The ``uri`` must be
``https`` (plain ``http`` only on loopback or an ``INSECURE_JWKS_HOSTS`` host): no token can make
the API fetch an arbitrary URL.""",
    ),
    "STATUS_LIST_MIN_TTL": Setting(
        5,
        v.number(positive=True),
        "E007",
        """The shortest time, in seconds, a fetched status list is used before it is
fetched again (the list's ``ttl``, else its ``exp``, else HTTP ``max-age``, else 60 s, clamped).""",
    ),
    "STATUS_LIST_MAX_TTL": Setting(
        3600,
        v.number(positive=True),
        "E007",
        """The longest time, in seconds, a status list is used before it is fetched again.""",
    ),
    "STATUS_LIST_MAX_BYTES": Setting(
        1024 * 1024,
        v.number(positive=True, integer=True),
        "E007",
        """The largest status list response, in bytes, as sent and after its
``Content-Encoding`` is decoded.""",
    ),
    "STATUS_LIST_MAX_INFLATED_BYTES": Setting(
        4 * 1024 * 1024,
        v.number(positive=True, integer=True),
        "E007",
        """The largest inflated ``lst``, in bytes: a compression bomb is refused as soon as
this many bytes have been produced.""",
    ),
    "STATUS_LIST_STALE_IF_ERROR": Setting(
        300,
        v.number(),
        "E007",
        """Seconds the last good list keeps serving while refreshes fail (never past the
list's ``exp``).""",
    ),
    "STATUS_LIST_UNAVAILABLE": Setting(
        "reject",
        v.choice("reject", "accept"),
        "E026",
        """With no usable list for a token: ``"reject"`` answers 503 with
``Retry-After`` (reason ``token_status_unavailable``); ``"accept"`` lets the token through
unchecked, logged once per outage.""",
    ),
    "STATUS_VIEW_ACCESS": Setting(
        "loopback",
        v.status_view_access,
        "E031",
        """Who may read the status view (``drf_m2m_auth.urls``, URL name ``m2m-status``):
``"loopback"`` only requests whose ``REMOTE_ADDR`` is 127.0.0.0/8 or ::1 (``X-Forwarded-For`` is
never believed); ``"public"`` anyone; ``"scope:<scope>"`` an M2M access token carrying that
scope. The view shows versions, ages and key counts, never a secret or a token.""",
    ),
}
