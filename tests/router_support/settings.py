"""A project whose drf_m2m_auth tables live in a second database ("fleet"), through M2MRouter."""

import os

from testproject.settings import *  # noqa: F403

_DIR = os.environ["ROUTER_TEST_DIR"]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(_DIR, "default.sqlite3")},
    "fleet": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(_DIR, "fleet.sqlite3")},
}
DATABASE_ROUTERS = ["drf_m2m_auth.routers.M2MRouter"]
DRF_M2M_AUTH = {**DRF_M2M_AUTH, "DATABASE": "fleet"}  # noqa: F405
