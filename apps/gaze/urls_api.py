from rest_framework.routers import DefaultRouter

from apps.gaze import api

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False
router.register("readers", api.ReaderViewSet, basename="reader")
router.register("sessions", api.ReadingSessionViewSet, basename="session")
router.register("recordings", api.RecordingViewSet, basename="recording")
router.register("readings", api.ReadingViewSet, basename="reading")
router.register("fixations", api.FixationViewSet, basename="fixation")
router.register("saliency-maps", api.SaliencyMapViewSet, basename="saliency-map")

urlpatterns = router.urls
