from django.contrib import admin

from apps.training.models import ModelAlias, ModelVersion, TrainingJob


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "lab", "status", "epoch", "attempts", "created_at"]
    list_filter = ["status"]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "lab", "best_epoch", "created_at"]


@admin.register(ModelAlias)
class ModelAliasAdmin(admin.ModelAdmin):
    list_display = ["name", "lab", "version", "set_at"]
