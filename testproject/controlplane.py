"""The fleet's control plane: the admin and the operator tools on drf_m2m_auth's shared database.

Any Django project with the app installed and the ``fleet`` alias pointing at the shared database
(read-write) is a control plane; this one keeps its admin users and sessions in its own SQLite
file (``default``). See ``testproject.fleet`` for the environment it reads.
"""

from typing import Any

from testproject.fleet.base import *  # noqa: F403
from testproject.fleet.base import m2m_settings

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_m2m_auth",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "testproject.fleet.cp_urls"
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
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # test logins only
REST_FRAMEWORK: dict[str, Any] = {"UNAUTHENTICATED_USER": None}
# The control plane serves no API of its own: its API (this audience) only pre-fills the admin's
# grant rows; every grant names the API it is for (orders, billing, shipping).
DRF_M2M_AUTH = m2m_settings("https://control-plane.fleet.example")
