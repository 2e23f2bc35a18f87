"""The fleet's "orders" API service (see testproject.fleet)."""

from .base import m2m_settings
from .service import *  # noqa: F403

FLEET_API = "orders"
DRF_M2M_AUTH = m2m_settings("https://orders.fleet.example", api=FLEET_API)
