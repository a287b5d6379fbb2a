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
