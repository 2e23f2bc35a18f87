"""WSGI entry point for the gunicorn workers of the real-service tests."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.realservices.worker_settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
