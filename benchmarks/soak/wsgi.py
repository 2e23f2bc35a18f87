"""WSGI entry point of the soak run's gunicorn processes (service-b and the issuer).

DJANGO_SETTINGS_MODULE comes from the harness: service-b's module is a parameter.
"""

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
