import importlib.util
import logging

from django.apps import AppConfig


class DrfM2MAuthConfig(AppConfig):
    name = "drf_m2m_auth"
    verbose_name = "Machine-to-machine auth"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  registers the system checks
            revocation,
        )

        revocation.connect()  # the models announce changes by a signal; revocation reloads on it

        # drf-spectacular registers an extension when its module is imported; only if installed.
        if importlib.util.find_spec("drf_spectacular") is not None:
            try:
                from .contrib import spectacular  # noqa: F401
            except ImportError as exc:  # an incompatible drf-spectacular must not take auth down
                logging.getLogger("drf_m2m_auth").warning("drf-spectacular extension not loaded: %s", exc)
