"""The fleet's "shipping" API service (see testproject.fleet)."""

from .base import m2m_settings
from .service import *  # noqa: F403

FLEET_API = "shipping"
DRF_M2M_AUTH = m2m_settings("https://shipping.fleet.example", api=FLEET_API)
