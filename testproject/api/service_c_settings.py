"""Settings for the demo's service-c, the "reports" API: service-b's settings, its own URLs.

Its audience and API identifier (``https://reports.example``) come from ``M2M_AUDIENCE``; with
``TESTPROJECT_FLEET_SQLITE`` it shares drf_m2m_auth's tables and the cache with service-b.
"""

from testproject.api.service_settings import *  # noqa: F403

ROOT_URLCONF = "testproject.api.reports"
