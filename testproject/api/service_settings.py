"""Settings for one process of the demo or of the end-to-end tests.

Everything comes from the environment, set by ``testproject.api.processes``: the role
(``TESTPROJECT_ROLE``: issuer or api), a temporary SQLite file, and a file-based cache directory
shared by every process of that service (the server and the operator's management commands), so
that a revocation made by ``m2m_revoke`` reaches the running server as it would through Redis.

With ``TESTPROJECT_FLEET_SQLITE`` (the demo's fleet: service-b, service-c and the control plane)
drf_m2m_auth's tables live in that shared SQLite file, the ``fleet`` alias, through
``drf_m2m_auth.routers.M2MRouter``; the processes then also share one cache directory.
"""

import os

from testproject.settings import *  # noqa: F403
from testproject.settings import DRF_M2M_AUTH as _BASE_M2M

TESTPROJECT_ROLE = os.environ.get("TESTPROJECT_ROLE", "all")
DEBUG = False

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["TESTPROJECT_SQLITE"],
        "OPTIONS": {"timeout": 10},
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": os.environ["TESTPROJECT_CACHE_DIR"],
    }
}

DRF_M2M_AUTH = dict(_BASE_M2M)
if os.environ.get("TESTPROJECT_FLEET_SQLITE"):
    DATABASES["fleet"] = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["TESTPROJECT_FLEET_SQLITE"],
        "OPTIONS": {"timeout": 10},
    }
    DATABASE_ROUTERS = ["drf_m2m_auth.routers.M2MRouter"]
    DRF_M2M_AUTH["DATABASE"] = "fleet"
for _name, _cast in (("JWKS_REFRESH_COOLDOWN", float), ("REVOCATION_CHECK_INTERVAL", float), ("LEEWAY", int)):
    if os.environ.get("M2M_" + _name):
        DRF_M2M_AUTH[_name] = _cast(os.environ["M2M_" + _name])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "drf_m2m_auth": {"handlers": ["console"], "level": os.environ.get("M2M_LOG_LEVEL", "INFO")},
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
