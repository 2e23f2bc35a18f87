"""With Django's default logging and DEBUG on, a rejection's reason code reaches the console."""

import os
import subprocess
import sys

import pytest

SCRIPT = """
import django
from django.conf import settings

settings.configure(
    DEBUG={debug},
    SECRET_KEY="x" * 50,
    ALLOWED_HOSTS=["testserver"],
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework", "drf_m2m_auth"],
    DATABASES={{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}}},
    DRF_M2M_AUTH={{"ISSUER": "https://tenant.example/", "AUDIENCE": "https://api.example",
                  "JWKS_URL": "https://tenant.example/jwks"}},
    {logging}
)
django.setup()
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIRequestFactory
from drf_m2m_auth.authentication import M2MJWTAuthentication

request = APIRequestFactory().get("/", HTTP_AUTHORIZATION="Bearer not-a-jwt-SECRET")
try:
    M2MJWTAuthentication().authenticate(request)
except AuthenticationFailed:
    pass
"""


def run(debug, logging=""):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": ""}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(debug=debug, logging=logging)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    return done.stderr


@pytest.mark.slow
def test_debug_shows_the_reason_never_the_token():
    err = run(True)
    assert "INFO drf_m2m_auth.authentication: token rejected: reason=malformed" in err, err
    assert "SECRET" not in err


@pytest.mark.slow
def test_quiet_without_debug_and_when_logging_is_configured():
    assert "token rejected" not in run(False)
    configured = 'LOGGING={"version": 1, "loggers": {"drf_m2m_auth": {"level": "WARNING"}}},'
    assert "token rejected" not in run(True, configured)
