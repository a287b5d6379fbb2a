from django.apps import AppConfig


class TrainingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.training"
    label = "training"
    verbose_name = "Training and the model registry"

    def ready(self) -> None:
        from apps.core import files, quota
        from apps.training.models import ModelVersion, TrainingJob
        from apps.training.services import training_usage_bytes

        # Files go with their rows (deleted after the deleting transaction commits).
        files.register(TrainingJob, "checkpoint_name", "best_name")
        files.register(ModelVersion, "checkpoint_name")
        quota.register("training", training_usage_bytes)
