from rest_framework.routers import DefaultRouter

from apps.webhooks import api

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False
router.register("webhooks", api.WebhookViewSet, basename="webhook")
router.register("webhook-deliveries", api.WebhookDeliveryViewSet, basename="webhook-delivery")

urlpatterns = router.urls
