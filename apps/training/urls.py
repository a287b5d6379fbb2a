from django.urls import path

from apps.training import views

urlpatterns = [
    path("training/", views.job_list, name="training-jobs"),
    path("training/<int:pk>/", views.job_page, name="training-job"),
    path("training/<int:pk>/cancel/", views.job_cancel, name="training-job-cancel-page"),
    path("models/", views.model_list, name="training-models"),
    path("models/<int:pk>/", views.model_page, name="training-model"),
]
