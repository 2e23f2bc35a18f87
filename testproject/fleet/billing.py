"""The fleet's "billing" API service (see testproject.fleet)."""

from .base import m2m_settings
from .service import *  # noqa: F403

FLEET_API = "billing"
DRF_M2M_AUTH = m2m_settings("https://billing.fleet.example", api=FLEET_API)
