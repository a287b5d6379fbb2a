from django.apps import AppConfig


class ImagingConfig(AppConfig):
    name = "apps.imaging"
    label = "imaging"
    verbose_name = "Images"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from apps.imaging.services import image_class_defaults_ensure
        from apps.labs.models import Lab

        def _defaults(sender, instance, created, raw=False, **kwargs):
            if created and not raw:
                image_class_defaults_ensure(lab=instance)

        post_save.connect(_defaults, sender=Lab, dispatch_uid="imaging-default-classes")

        from apps.core import files
        from apps.imaging.models import Image, ImageRegion, UploadBatchFile

        # Files go with their rows (deleted after the deleting transaction commits).
        files.register(Image, "dicom_path", "preview_path", "thumbnail_path", "array_path")
        files.register(UploadBatchFile, "staged_name")
        files.register(ImageRegion, "mask_name")

        from django.db.models import Sum

        from apps.core import quota

        def _usage(lab_id: int) -> int:
            total = Image.objects.filter(lab_id=lab_id).aggregate(n=Sum("derived_bytes"))["n"]
            return int(total or 0)

        quota.register("imaging", _usage)
