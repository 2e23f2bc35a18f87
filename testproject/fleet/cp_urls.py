"""The control plane's URLs: the admin (and its static files: a test server), healthz."""

import os

from django.contrib import admin
from django.contrib.staticfiles.views import serve as serve_static
from django.http import JsonResponse
from django.urls import path, re_path


def healthz(request):
    return JsonResponse({"pid": os.getpid()})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz),
    re_path(r"^static/(?P<path>.*)$", serve_static, {"insecure": True}),
]
