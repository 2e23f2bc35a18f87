"""The install guide's ``from .models import Order``: the test project's records stand in for orders."""

from testproject.api.models import DataRecord as Order

__all__ = ["Order"]
