from django.contrib import admin

from apps.datasets.models import DatasetSnapshot, SnapshotItem


class SnapshotItemInline(admin.TabularInline):
    model = SnapshotItem
    fields = ["key", "label", "split", "patient_key", "n_fixations"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False


@admin.register(DatasetSnapshot)
class DatasetSnapshotAdmin(admin.ModelAdmin):
    list_display = ["name", "lab", "status", "progress", "content_hash", "created_at"]
    list_filter = ["status", "lab"]
    search_fields = ["name", "content_hash"]
    readonly_fields = [f.name for f in DatasetSnapshot._meta.concrete_fields]
    inlines = [SnapshotItemInline]

    def has_add_permission(self, request) -> bool:
        return False  # snapshots are made by snapshot_create (choices checked, split computed)
