from django.apps import AppConfig


class IssuerConfig(AppConfig):
    name = "testproject.issuer"
    label = "issuer"
    verbose_name = "Local issuer (stand-in for Auth0, not for production)"
    default_auto_field = "django.db.models.BigAutoField"
