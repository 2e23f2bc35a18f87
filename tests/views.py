"""Views the authentication and permission tests call through DRF's real request cycle."""

from rest_framework import viewsets
from rest_framework.authentication import BasicAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from drf_m2m_auth.authentication import M2MJWTAuthentication
from drf_m2m_auth.permissions import HasScopes


class Echo(APIView):
    authentication_classes = [M2MJWTAuthentication]
    permission_classes = [HasScopes]
    required_scopes = ["read:data"]

    def get(self, request):
        return Response(
            {
                "client_id": request.user.client_id,
                "pk": request.user.pk,
                "scopes": sorted(request.auth.scopes),
                "sub": request.user.subject,
            }
        )

    def post(self, request):
        return Response({"ok": True})


class EchoWithBasic(Echo):
    authentication_classes = [M2MJWTAuthentication, BasicAuthentication]


class DataViewSet(viewsets.ViewSet):
    authentication_classes = [M2MJWTAuthentication]
    permission_classes = [HasScopes]
    required_scopes = {"list": ["read:data"], "create": ["write:data"], "GET": ["read:other"], "DELETE": ["admin:data"]}

    def list(self, request):
        return Response(["a", "b"])

    def create(self, request):
        return Response({"created": True}, status=201)

    def retrieve(self, request, pk=None):
        return Response({"pk": pk})

    def update(self, request, pk=None):  # no entry for "update" nor "PUT": denied
        return Response({"updated": pk})


class Allow(BasePermission):
    def has_permission(self, request, view):
        return True


class Deny(BasePermission):
    def has_permission(self, request, view):
        return False


def scoped(perm, scopes=("write:data",)):
    return type("Scoped", (Echo,), {"permission_classes": [perm], "required_scopes": list(scopes)}).as_view()
