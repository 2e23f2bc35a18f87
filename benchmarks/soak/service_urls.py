"""service-b's endpoints in the soak run: one authenticated resource and the no-auth floor."""

import os

from django.http import JsonResponse
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from drf_m2m_auth.permissions import HasResourceGrant, HasScopes


def worker_pid_header(get_response):
    """Middleware: ``X-Worker-Pid`` on every answer, so the checker can tell the workers apart."""

    def middleware(request):
        response = get_response(request)
        response["X-Worker-Pid"] = str(os.getpid())  # after a fork, not the import-time pid
        return response

    return middleware


class Orders(APIView):
    permission_classes = [HasScopes & HasResourceGrant]
    required_scopes = ["read:data"]
    resource_name = "orders"

    def get(self, request):
        return Response({"client_id": request.user.client_id})


class Floor(APIView):
    """The same service, the same DRF stack, no authentication: the latency floor."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"ok": True})


def healthz(request):
    return JsonResponse({"pid": os.getpid()})


urlpatterns = [
    path("orders/", Orders.as_view()),
    path("floor/", Floor.as_view()),
    path("healthz", healthz),
]
