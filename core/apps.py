from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Logins, logouts, failed logins and lockouts go to the audit trail through the
        # signals Django and django-axes send (the project's one use of signals; see there).
        from core import auth_audit

        auth_audit.connect()
