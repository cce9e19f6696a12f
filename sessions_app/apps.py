from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "Voice sessions"

    def ready(self) -> None:
        from sessions_app import checks  # noqa: F401  (registers the system checks)
        from sessions_app.recording import deletion  # noqa: F401  (connects its receiver)
