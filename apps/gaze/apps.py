from django.apps import AppConfig


class GazeConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.gaze"
    verbose_name = "Reading sessions and gaze"

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        from apps.core import files
        from apps.gaze.models import Reading, Recording, SaliencyMap
        from apps.gaze.services.saliency import pooled_maps_invalidate

        # Files go with their rows (deleted after the deleting transaction commits).
        files.register(Recording, "file_path", "companion_path")
        files.register(SaliencyMap, "file_path")

        from apps.core import quota
        from apps.gaze.services.saliency import saliency_usage_bytes

        quota.register("gaze", saliency_usage_bytes)

        def _reading_deleted(sender, instance, **kwargs):
            # A pooled map counts every reading of its image: one without this reading is new.
            pooled_maps_invalidate(lab_id=instance.lab_id, image_ids=[instance.image_id])

        post_delete.connect(_reading_deleted, sender=Reading, dispatch_uid="gaze-pooled-stale")
