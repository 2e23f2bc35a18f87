"""service-b's API: one viewset, guarded by a JWT from the issuer, its scopes and a resource grant."""

from rest_framework import mixins, viewsets

from drf_m2m_auth.authentication import M2MJWTAuthentication
from drf_m2m_auth.permissions import HasResourceGrant, HasScopes

from .models import DataRecord
from .serializers import DataRecordSerializer


class DataViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """``GET /data/`` needs ``read:data``; ``POST /data/`` needs ``write:data``; both a grant for "data"."""

    queryset = DataRecord.objects.all()
    serializer_class = DataRecordSerializer
    authentication_classes = [M2MJWTAuthentication]
    permission_classes = [HasScopes, HasResourceGrant]
    required_scopes = {"list": ["read:data"], "retrieve": ["read:data"], "create": ["write:data"]}
    resource_name = "data"

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user.client_id)
