"""A peer's service-b endpoints in the soak run: ``/orders/`` as benchmarks/systems.py wires the peer.

Each gunicorn worker sets the peer up when it first loads this module (its first request: the
harness's readiness probe), so a peer that reads the JWKS once reads it per worker, at its start,
as it would in a real deployment.
"""

import os

import systems
from django.conf import settings
from django.http import JsonResponse
from django.urls import path

SYSTEM = systems.SYSTEMS[settings.SOAK_SYSTEM](settings.SOAK_SYSTEM_CONFIG)
SYSTEM.setup()


def healthz(request):
    return JsonResponse({"pid": os.getpid(), "system": SYSTEM.name})


urlpatterns = [
    path("orders/", SYSTEM.scoped_view),
    path("floor/", systems.noauth_view()),
    path("healthz", healthz),
]
