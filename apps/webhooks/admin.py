from django.contrib import admin

from apps.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ["id", "lab", "url", "active", "created_at"]
    list_filter = ["active", "lab"]
    exclude = ["secret"]
    readonly_fields = ["created_by", "created_at", "secret_rotated_at"]


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = [
        "number", "started_at", "duration_ms", "status_code", "error", "response_body"
    ]  # fmt: skip


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "webhook", "event", "status", "attempts", "created_at"]
    list_filter = ["status", "event"]
    inlines = [WebhookAttemptInline]
    readonly_fields = ["webhook", "event", "payload", "attempts", "created_at", "finished_at"]
