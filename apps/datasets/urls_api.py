from rest_framework.routers import DefaultRouter

from apps.datasets import api

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False
router.register("snapshots", api.SnapshotViewSet, basename="snapshot")

urlpatterns = router.urls
