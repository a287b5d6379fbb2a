from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.evaluation"
    label = "evaluation"
    verbose_name = "Evaluations of model versions"

    def ready(self) -> None:
        from apps.core import files, quota
        from apps.evaluation.models import EvaluationImage
        from apps.evaluation.services import evaluation_usage_bytes

        # Each image's stored saliency map goes with its row.
        files.register(EvaluationImage, "map_name")
        quota.register("evaluation", evaluation_usage_bytes)
