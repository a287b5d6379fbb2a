from django.db import migrations

DEFAULT_CLASSES = ("Normal", "CHF", "Pneumonia")


def add_defaults(apps, schema_editor):
    Lab = apps.get_model("labs", "Lab")
    ImageClass = apps.get_model("imaging", "ImageClass")
    for lab in Lab.objects.all():
        if not ImageClass.objects.filter(lab=lab).exists():
            ImageClass.objects.bulk_create(
                [ImageClass(lab=lab, name=n, position=i) for i, n in enumerate(DEFAULT_CLASSES)]
            )


class Migration(migrations.Migration):
    dependencies = [("imaging", "0001_initial")]
    operations = [migrations.RunPython(add_defaults, migrations.RunPython.noop)]
