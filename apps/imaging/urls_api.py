from rest_framework.routers import DefaultRouter

from apps.imaging import api, api_regions

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False
router.register("images", api.ImageViewSet, basename="image")
router.register("image-classes", api.ImageClassViewSet, basename="image-class")
router.register("image-uploads", api.UploadBatchViewSet, basename="image-upload")
router.register("image-regions", api_regions.ImageRegionViewSet, basename="image-region")

urlpatterns = router.urls
