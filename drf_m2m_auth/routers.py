"""M2MRouter: drf_m2m_auth's tables on one database alias, the fleet's shared control-plane database.

Add it to ``DATABASE_ROUTERS`` and name the alias in ``DRF_M2M_AUTH["DATABASE"]`` (default
``"default"``). It routes this app's reads, writes and migrations to that alias and says nothing
about any other app's models, so it composes with the project's own routers.
"""

from __future__ import annotations

from typing import Any

from .conf import m2m_settings

__all__ = ["M2MRouter", "APP_LABEL"]

APP_LABEL = "drf_m2m_auth"


def _ours(model: Any) -> bool:
    return getattr(getattr(model, "_meta", None), "app_label", None) == APP_LABEL


class M2MRouter:
    """Route the drf_m2m_auth models to ``DRF_M2M_AUTH["DATABASE"]``; no opinion on anything else."""

    @staticmethod
    def alias() -> str:
        return m2m_settings.DATABASE

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return self.alias() if _ours(model) else None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return self.alias() if _ours(model) else None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        if _ours(obj1) and _ours(obj2):
            return True
        return None  # Django's default: allowed only within one database

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        if app_label == APP_LABEL:
            return db == self.alias()
        return None
