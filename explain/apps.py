from django.apps import AppConfig


class ExplainConfig(AppConfig):
    name = "explain"
    default_auto_field = "django.db.models.BigAutoField"

