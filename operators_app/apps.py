from django.apps import AppConfig


class OperatorsAppConfig(AppConfig):
    name = "operators_app"
    verbose_name = "Operators"
