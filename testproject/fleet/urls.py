"""One API of the fleet: ``api/`` needs a grant for the service's resource, ``whoami/`` only a token.

``reports/`` needs a grant for "reports", a resource every API of the fleet has.

The resource is the service's ``FLEET_API`` (orders, billing, shipping); ``m2m/status`` is the app's
status view; ``healthz`` answers without authentication (the test harness waits for it).
"""

import os

from django.conf import settings
from django.http import JsonResponse
from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

from drf_m2m_auth.permissions import HasResourceGrant, HasScopes


class Api(APIView):
    permission_classes = [HasScopes & HasResourceGrant]
    required_scopes = ["fleet:call"]

    @property
    def resource_name(self) -> str:
        return settings.FLEET_API

    def get(self, request):
        return Response({"api": settings.FLEET_API, "pid": os.getpid(), "client_id": request.user.client_id})


class Reports(Api):
    """A resource of the same name in every API: what a grant's ``api`` tells apart."""

    resource_name = "reports"  # type: ignore[assignment]


class WhoAmI(APIView):
    permission_classes = [HasScopes]
    required_scopes = ["fleet:call"]

    def get(self, request):
        return Response({"api": settings.FLEET_API, "pid": os.getpid(), "client_id": request.user.client_id})


def healthz(request):
    return JsonResponse({"pid": os.getpid()})


urlpatterns = [
    path("api/", Api.as_view()),
    path("reports/", Reports.as_view()),
    path("whoami/", WhoAmI.as_view()),
    path("m2m/", include("drf_m2m_auth.urls")),
    path("healthz", healthz),
]
