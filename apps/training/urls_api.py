from rest_framework.routers import DefaultRouter

from apps.training import api

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False
router.register("training-jobs", api.TrainingJobViewSet, basename="training-job")
router.register("model-versions", api.ModelVersionViewSet, basename="model-version")
router.register("model-aliases", api.ModelAliasViewSet, basename="model-alias")

urlpatterns = router.urls
