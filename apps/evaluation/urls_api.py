from rest_framework.routers import DefaultRouter

from apps.evaluation import api

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False
router.register("evaluations", api.EvaluationViewSet, basename="evaluation")
router.register("evaluation-images", api.EvaluationImageViewSet, basename="evaluation-image")

urlpatterns = router.urls
