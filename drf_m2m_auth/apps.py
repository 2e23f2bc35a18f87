from django.apps import AppConfig


class DrfM2MAuthConfig(AppConfig):
    name = "drf_m2m_auth"
    verbose_name = "Machine-to-machine auth"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  registers the system checks
