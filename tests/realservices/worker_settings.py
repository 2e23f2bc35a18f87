"""Settings for the real-service runs: gunicorn workers, operator commands, the PostgreSQL pytest run.

Everything comes from the environment (set by servers.django_env); unset means the test
project's defaults (SQLite, local-memory cache).
"""

import os

from testproject.settings import *  # noqa: F401,F403
from testproject.settings import DRF_M2M_AUTH as _BASE_M2M

DEBUG = False
ROOT_URLCONF = "tests.realservices.worker_urls"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # test logins only

if os.environ.get("TESTPROJECT_PG_HOST"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ["TESTPROJECT_PG_HOST"],
            "USER": os.environ["TESTPROJECT_PG_USER"],
            "NAME": os.environ["TESTPROJECT_PG_NAME"],
            "OPTIONS": {"connect_timeout": 5},
        }
    }
elif os.environ.get("TESTPROJECT_SQLITE"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ["TESTPROJECT_SQLITE"],
            "OPTIONS": {"timeout": 20},
        }
    }

if os.environ.get("TESTPROJECT_REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["TESTPROJECT_REDIS_URL"],
            # A down Redis must cost a request milliseconds, not a hung worker.
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
elif os.environ.get("TESTPROJECT_CACHE_DIR"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": os.environ["TESTPROJECT_CACHE_DIR"],
        }
    }

DRF_M2M_AUTH = dict(_BASE_M2M)
if os.environ.get("M2M_JWKS_URL"):
    DRF_M2M_AUTH["JWKS_URL"] = os.environ["M2M_JWKS_URL"]
for _name in ("REVOCATION_CHECK_INTERVAL", "REVOCATION_DB_CHECK_INTERVAL"):
    if os.environ.get("M2M_" + _name):
        DRF_M2M_AUTH[_name] = float(os.environ["M2M_" + _name])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"drf_m2m_auth": {"handlers": ["console"], "level": "INFO"}},
}
