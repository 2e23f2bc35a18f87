"""service-b behind nginx: the test project, with DRF_M2M_AUTH and storage chosen by the test's environment."""

import json
import os

from testproject.settings import *  # noqa: F401,F403

DEBUG = False
ROOT_URLCONF = "tests.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["NGINX_TEST_SQLITE"]}}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": os.environ["NGINX_TEST_CACHE_DIR"],
    }
}
DRF_M2M_AUTH = json.loads(os.environ["NGINX_TEST_M2M"])
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "drf_m2m_auth": {"handlers": ["console"], "level": "INFO"},
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
