"""Settings every API service of the fleet shares (each service module adds its API's names)."""

from __future__ import annotations

from typing import Any

from .base import *  # noqa: F403

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "drf_m2m_auth",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "testproject.fleet.urls"
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["drf_m2m_auth.authentication.M2MJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["drf_m2m_auth.permissions.HasScopes"],
    "UNAUTHENTICATED_USER": None,
}
