"""The app's wiring: system checks, the settings loaded once, the optional OpenAPI extension."""

import importlib.util
import logging

from django.apps import AppConfig

__all__ = ["DrfM2MAuthConfig"]

logger = logging.getLogger("drf_m2m_auth")


class DrfM2MAuthConfig(AppConfig):
    name = "drf_m2m_auth"
    verbose_name = "Machine-to-machine auth"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  registers the system checks
            revocation,
        )
        from .conf import m2m_settings

        revocation.connect()  # the models announce changes by a signal; revocation reloads on it

        # Validate the settings now and remember every problem. Never raise here: manage.py check
        # must still run to report them (with ids), and a request answers 503 until they are fixed.
        problems = m2m_settings.problems
        if problems:
            logger.warning(
                "DRF_M2M_AUTH has %d invalid setting(s) (%s); run manage.py check",
                len(problems),
                ", ".join(sorted({p.key or "DRF_M2M_AUTH" for p in problems})),
            )

        _show_rejections_in_debug()

        # drf-spectacular registers an extension when its module is imported; only if installed.
        if importlib.util.find_spec("drf_spectacular") is not None:
            try:
                from .contrib import spectacular  # noqa: F401
            except ImportError as exc:  # an incompatible drf-spectacular must not take auth down
                logger.warning("drf-spectacular extension not loaded: %s", exc)


def _show_rejections_in_debug() -> None:
    """With DEBUG on and no logging configured for it, runserver's console shows our INFO lines.

    Django's default logging configures only the ``django`` loggers, so "token rejected:
    reason=expired" would appear nowhere. When neither LOGGING, a handler on ``drf_m2m_auth`` nor
    a root handler says where our records go, they go to stderr at INFO while DEBUG is True (the
    filter reads DEBUG at each record, like Django's own console handler). Any logging
    configuration of yours wins: then nothing is added.
    """
    from django.conf import settings
    from django.utils.log import RequireDebugTrue

    configured = (getattr(settings, "LOGGING", None) or {}).get("loggers", {})
    if not settings.DEBUG or "drf_m2m_auth" in configured or logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.addFilter(RequireDebugTrue())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
