from django.contrib import admin

from apps.evaluation.models import Evaluation


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "lab", "version", "split", "status", "created_at"]
    list_filter = ["status", "split"]
