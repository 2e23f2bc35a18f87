"""Settings for the test project: SQLite and an in-process cache by default, no external server."""

import os
from importlib.util import find_spec
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "testproject-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_m2m_auth",
    "testproject.issuer",
    "testproject.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "testproject.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TESTPROJECT_SQLITE", str(BASE_DIR / "db.sqlite3")),
    }
}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["drf_m2m_auth.authentication.M2MJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["drf_m2m_auth.permissions.HasScopes"],
    "UNAUTHENTICATED_USER": None,
}
if find_spec("drf_spectacular") is not None:  # in the test extra; the demo runs without it
    INSTALLED_APPS.append("drf_spectacular")
    REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "drf_spectacular.openapi.AutoSchema"
    SPECTACULAR_SETTINGS = {"TITLE": "service-b (drf-m2m-auth test project)", "VERSION": "1.0.0"}

DRF_M2M_AUTH: dict[str, Any] = {
    "ISSUER": os.environ.get("M2M_ISSUER", "http://127.0.0.1:8000/issuer/"),
    "AUDIENCE": os.environ.get("M2M_AUDIENCE", "https://service-b.example"),
    "LEEWAY": 5,
}
if os.environ.get("M2M_ISSUER_2"):
    # A second tenant (the e2e suite's second local issuer process, with its own keys): the API
    # then trusts two issuers, one ISSUERS entry each.
    DRF_M2M_AUTH = {
        "ISSUERS": [
            {"issuer": DRF_M2M_AUTH["ISSUER"], "audience": DRF_M2M_AUTH["AUDIENCE"]},
            {"issuer": os.environ["M2M_ISSUER_2"], "audience": DRF_M2M_AUTH["AUDIENCE"]},
        ],
        "LEEWAY": 5,
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"drf_m2m_auth": {"handlers": ["console"], "level": "WARNING"}},
}
