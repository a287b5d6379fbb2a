from django.apps import AppConfig


class GazeConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.gaze"
    verbose_name = "Reading sessions and gaze"
