from django.urls import path

from apps.datasets import views

urlpatterns = [
    path("datasets/", views.snapshot_list, name="datasets-snapshots"),
    path("datasets/<int:pk>/", views.snapshot_page, name="datasets-snapshot"),
    path("datasets/<int:pk>/delete/", views.snapshot_delete, name="datasets-snapshot-delete"),
]
