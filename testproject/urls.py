"""The test project's URLs. One process may serve both roles (``runserver``) or one of them.

``TESTPROJECT_ROLE`` (a setting; the demo and the end-to-end tests set it per process) is
``"all"`` by default, ``"issuer"`` for a process that is only the local issuer, ``"api"`` for a
process that is only service-b.
"""

from django.conf import settings
from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path

ROLE = getattr(settings, "TESTPROJECT_ROLE", "all")


def index(request):
    links = {"admin": request.build_absolute_uri("/admin/")}
    if ROLE in ("all", "issuer"):
        links["issuer"] = request.build_absolute_uri("/issuer/")
        links["issuer_discovery"] = request.build_absolute_uri("/issuer/.well-known/openid-configuration")
    if ROLE in ("all", "api"):
        links["service_b_data"] = request.build_absolute_uri("/data/")
        if "drf_spectacular" in settings.INSTALLED_APPS:
            links["service_b_openapi"] = request.build_absolute_uri("/api/schema/")
    return JsonResponse({"role": ROLE, "links": links})


urlpatterns = [
    path("", index, name="index"),
    path("admin/", admin.site.urls),
]
if ROLE in ("all", "issuer"):
    urlpatterns.append(path("issuer/", include("testproject.issuer.urls")))
if ROLE in ("all", "api"):
    urlpatterns.append(path("", include("testproject.api.urls")))
if ROLE in ("all", "api") and "drf_spectacular" in settings.INSTALLED_APPS:
    from drf_spectacular.views import SpectacularAPIView

    urlpatterns.insert(0, path("api/schema/", SpectacularAPIView.as_view(), name="schema"))
