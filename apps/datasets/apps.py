from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.datasets"
    label = "datasets"
    verbose_name = "Dataset snapshots"

    def ready(self) -> None:
        from apps.core import files, quota
        from apps.datasets.models import SnapshotFile
        from apps.datasets.services import snapshot_usage_bytes

        # Files go with their rows (deleted after the deleting transaction commits).
        files.register(SnapshotFile, "name")
        quota.register("datasets", snapshot_usage_bytes)
