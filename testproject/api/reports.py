"""service-c, the demo's "reports" API: its views and URLs (ROOT_URLCONF of service_c_settings).

``GET /reports/`` needs ``read:reports`` and a grant for "reports"; ``GET /data/`` (the figures
behind the reports) needs ``read:reports`` and a grant for "data" -- a resource name service-b's
API uses too, which is what a grant's API tells apart. Grants come from the control plane.
"""

from django.conf import settings
from django.http import JsonResponse
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from drf_m2m_auth.authentication import M2MJWTAuthentication
from drf_m2m_auth.permissions import HasResourceGrant, HasScopes

READ_REPORTS = "read:reports"


class Reports(APIView):
    authentication_classes = [M2MJWTAuthentication]
    permission_classes = [HasScopes, HasResourceGrant]
    required_scopes = [READ_REPORTS]
    resource_name = "reports"

    def get(self, request):
        return Response([{"report": "daily", "rows": 2, "for": request.user.client_id}])


class Figures(Reports):
    resource_name = "data"

    def get(self, request):
        return Response([{"name": "temperature", "mean": "21.5"}])


def index(request):
    return JsonResponse({"role": getattr(settings, "TESTPROJECT_ROLE", "reports"), "links": ["reports/", "data/"]})


urlpatterns = [
    path("", index, name="index"),
    path("reports/", Reports.as_view(), name="reports"),
    path("data/", Figures.as_view(), name="figures"),
]
