"""The API the real-service workers serve: a granted resource, an ungranted one, the admin."""

import os

from django.contrib import admin
from django.contrib.staticfiles.views import serve as serve_static
from django.http import JsonResponse
from django.urls import path, re_path
from rest_framework.response import Response
from rest_framework.views import APIView

from drf_m2m_auth.permissions import HasResourceGrant, HasScopes


class Orders(APIView):
    permission_classes = [HasScopes & HasResourceGrant]
    required_scopes = ["read:orders"]
    resource_name = "orders"

    def get(self, request):
        return Response({"pid": os.getpid(), "client_id": request.user.client_id})


class Payroll(Orders):
    resource_name = "payroll"


class WhoAmI(APIView):
    """Authentication and scopes only: shows what UNREGISTERED_CLIENTS does on its own."""

    permission_classes = [HasScopes]
    required_scopes = ["read:orders"]

    def get(self, request):
        return Response({"pid": os.getpid(), "client_id": request.user.client_id})


def healthz(request):
    return JsonResponse({"pid": os.getpid()})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("orders/", Orders.as_view()),
    path("payroll/", Payroll.as_view()),
    path("whoami/", WhoAmI.as_view()),
    path("healthz", healthz),
    # The admin's CSS/JS for the browser test (DEBUG is off; this is a test server).
    re_path(r"^static/(?P<path>.*)$", serve_static, {"insecure": True}),
]
