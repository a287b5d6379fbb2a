from django.apps import AppConfig


class LabsConfig(AppConfig):
    name = "apps.labs"
    label = "labs"
    verbose_name = "Labs and members"
