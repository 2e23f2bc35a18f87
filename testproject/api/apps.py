from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "testproject.api"
    label = "api"
    verbose_name = "service-b (demo API)"
    default_auto_field = "django.db.models.BigAutoField"
