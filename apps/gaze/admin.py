from django.contrib import admin

from apps.gaze.models import Reader, Reading, ReadingSession, Recording


@admin.register(Reader)
class ReaderAdmin(admin.ModelAdmin):
    list_display = ["code", "lab", "years_experience", "specialty", "user"]
    list_filter = ["lab"]
    search_fields = ["code"]


@admin.register(ReadingSession)
class ReadingSessionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "lab", "reader", "date", "fixation_detection", "created_at"]
    list_filter = ["lab"]


@admin.register(Recording)
class RecordingAdmin(admin.ModelAdmin):
    list_display = ["original_name", "lab", "session", "format", "status", "progress", "created_at"]
    list_filter = ["lab", "status", "format"]
    readonly_fields = ["sha256", "file_path", "companion_path"]


@admin.register(Reading)
class ReadingAdmin(admin.ModelAdmin):
    list_display = ["__str__", "lab", "fixation_count", "grade", "use_for_training"]
    list_filter = ["lab", "grade", "use_for_training"]
