"""drf_m2m_auth: machine-to-machine authentication for Django REST Framework APIs (OAuth 2.0 JWT
access tokens). The public names live in its modules; see the documentation's Public API page."""

__all__ = ["__version__"]

__version__ = "0.2.0"
