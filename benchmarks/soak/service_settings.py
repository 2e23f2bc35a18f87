"""service-b for the soak run: PostgreSQL (grants, revocation), Redis (shared cache), all from env.

The harness passes the settings module as a parameter (``--service-settings``), so a peer library
can run as service-b with its own module. This one is ours: drf_m2m_auth on ``/orders/``
(token, scope ``read:orders``, grant ``orders``) and ``/floor/``, the same service without auth.

Environment: TESTPROJECT_PG_HOST/USER/NAME, TESTPROJECT_REDIS_URL, M2M_ISSUER, M2M_AUDIENCE,
M2M_JWKS_URL, and any float setting below as M2M_<NAME>.
"""

import os

from testproject.settings import *  # noqa: F401,F403
from testproject.settings import DRF_M2M_AUTH as _BASE_M2M
from testproject.settings import MIDDLEWARE as _BASE_MIDDLEWARE

DEBUG = False
ROOT_URLCONF = "benchmarks.soak.service_urls"
# First: every answer (401s and 403s included) names the worker that gave it, for the checker.
MIDDLEWARE = ["benchmarks.soak.service_urls.worker_pid_header", *_BASE_MIDDLEWARE]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("TESTPROJECT_PG_HOST", ""),
        "USER": os.environ.get("TESTPROJECT_PG_USER", ""),
        "NAME": os.environ.get("TESTPROJECT_PG_NAME", "m2m_soak"),
        "OPTIONS": {"connect_timeout": 2},
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("TESTPROJECT_REDIS_URL", "unix:///nonexistent"),
        # A dead Redis must cost a request milliseconds, not a hung worker.
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}

DRF_M2M_AUTH = dict(_BASE_M2M)
if os.environ.get("M2M_JWKS_URL"):
    DRF_M2M_AUTH["JWKS_URL"] = os.environ["M2M_JWKS_URL"]
for _name in (
    "REVOCATION_CHECK_INTERVAL",
    "REVOCATION_DB_CHECK_INTERVAL",
    "JWKS_MIN_TTL",
    "JWKS_MAX_TTL",
    "JWKS_REFRESH_COOLDOWN",
):
    if os.environ.get("M2M_" + _name):
        DRF_M2M_AUTH[_name] = float(os.environ["M2M_" + _name])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Wall-clock time (the history's clock) and pid, so a worker's JWKS fetches line up with its answers.
    "formatters": {"timed": {"format": "%(created).3f %(process)d %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "timed"}},
    "loggers": {
        "drf_m2m_auth": {"handlers": ["console"], "level": "INFO"},
        # Every JWKS fetch (one per worker per JWKS_MAX_TTL at most): the timings of a key rotation.
        "drf_m2m_auth.jwks": {"handlers": ["console"], "level": "DEBUG", "propagate": False},
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
