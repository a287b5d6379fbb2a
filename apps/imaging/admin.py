from django.contrib import admin

from apps.imaging.models import (
    DeidentificationAudit,
    Image,
    ImageClass,
    UploadBatch,
    UploadBatchFile,
)


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["key", "lab", "label", "width", "height", "burned_in_annotation", "created_at"]
    list_filter = ["lab", "label", "burned_in_annotation", "source_format"]
    search_fields = ["key"]
    readonly_fields = ["pixel_sha256", "dicom_path", "preview_path", "thumbnail_path", "array_path"]


@admin.register(ImageClass)
class ImageClassAdmin(admin.ModelAdmin):
    list_display = ["name", "lab", "position"]
    list_filter = ["lab"]


@admin.register(DeidentificationAudit)
class DeidentificationAuditAdmin(admin.ModelAdmin):
    list_display = ["image_key", "lab", "performed_by", "created_at"]
    readonly_fields = ["lab", "image", "image_key", "method", "removed_attributes",
                       "performed_by", "created_at"]  # fmt: skip

    def has_change_permission(self, request, obj=None):
        return False


class UploadBatchFileInline(admin.TabularInline):
    model = UploadBatchFile
    fields = ["filename", "size", "status", "message", "image"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(UploadBatch)
class UploadBatchAdmin(admin.ModelAdmin):
    """Upload batches are written by the upload request and the worker only."""

    list_display = ["pk", "lab", "status", "files_done", "files_total", "created", "rejected",
                    "created_by", "created_at"]  # fmt: skip
    list_filter = ["status", "lab"]
    inlines = [UploadBatchFileInline]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False
