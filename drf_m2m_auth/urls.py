"""Mount the status view: ``path("m2m/", include("drf_m2m_auth.urls"))`` serves ``m2m/status``.

The URL's name is ``m2m-status`` (``reverse("m2m-status")``). Who may read it:
``DRF_M2M_AUTH["STATUS_VIEW_ACCESS"]`` (default ``"loopback"``).
"""

from __future__ import annotations

from django.urls import path

from .views import StatusView

__all__ = ["urlpatterns"]

urlpatterns = [path("status", StatusView.as_view(), name="m2m-status")]
