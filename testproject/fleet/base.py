"""What every process of the fleet shares: the ``fleet`` database alias, the cache, the issuer.

Environment: ``TESTPROJECT_FLEET_PG_HOST``/``_NAME``/``_USER`` (PostgreSQL; the data-plane
services get the read-only role's name) or ``TESTPROJECT_FLEET_SQLITE`` (a file); the process's own
``TESTPROJECT_SQLITE``; ``TESTPROJECT_REDIS_URL`` or ``TESTPROJECT_CACHE_DIR``; ``M2M_ISSUER``,
``M2M_JWKS_URL``, ``M2M_REVOCATION_CHECK_INTERVAL``, ``M2M_REVOCATION_DB_CHECK_INTERVAL``.
"""

from __future__ import annotations

import os
from typing import Any


def fleet_database() -> dict[str, Any]:
    if os.environ.get("TESTPROJECT_FLEET_PG_HOST"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ["TESTPROJECT_FLEET_PG_HOST"],
            "USER": os.environ["TESTPROJECT_FLEET_PG_USER"],
            "NAME": os.environ["TESTPROJECT_FLEET_PG_NAME"],
            "OPTIONS": {"connect_timeout": 2},
        }
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["TESTPROJECT_FLEET_SQLITE"],
        "OPTIONS": {"timeout": 10},
    }


def own_database() -> dict[str, Any]:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["TESTPROJECT_SQLITE"],
        "OPTIONS": {"timeout": 10},
    }


def caches() -> dict[str, Any]:
    if os.environ.get("TESTPROJECT_REDIS_URL"):
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": os.environ["TESTPROJECT_REDIS_URL"],
                # A down Redis must cost a request milliseconds, not a hung worker.
                "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
            }
        }
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": os.environ["TESTPROJECT_CACHE_DIR"],
        }
    }


def m2m_settings(audience: str, api: str | None = None) -> dict[str, Any]:
    """``api``: the service's API identifier, the api of its grants (default: the audience)."""
    conf: dict[str, Any] = {
        "ISSUER": os.environ.get("M2M_ISSUER", "http://127.0.0.1:8000/issuer/"),
        "AUDIENCE": audience,
        "LEEWAY": 5,
        "DATABASE": "fleet",
        "CACHE_KEY_PREFIX": "drf_m2m_auth.fleet",  # one prefix for the whole fleet on its Redis
    }
    if api is not None:
        conf["API"] = api
    if os.environ.get("M2M_JWKS_URL"):
        conf["JWKS_URL"] = os.environ["M2M_JWKS_URL"]
    for name in ("REVOCATION_CHECK_INTERVAL", "REVOCATION_DB_CHECK_INTERVAL"):
        if os.environ.get("M2M_" + name):
            conf[name] = float(os.environ["M2M_" + name])
    return conf


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "testproject-fleet-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
DATABASE_ROUTERS = ["drf_m2m_auth.routers.M2MRouter"]
DATABASES = {"default": own_database(), "fleet": fleet_database()}
CACHES = caches()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "drf_m2m_auth": {"handlers": ["console"], "level": "INFO"},
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
