"""The install guide's ``from .serializers import OrderSerializer``."""

from testproject.api.serializers import DataRecordSerializer as OrderSerializer

__all__ = ["OrderSerializer"]
