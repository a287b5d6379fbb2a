from django.urls import path

from apps.imaging import views

urlpatterns = [
    path("images/", views.image_library, name="image-library"),
    path("images/upload/", views.image_upload, name="image-upload"),
    path("images/classes/", views.image_classes, name="image-classes"),
    path("images/classes/<int:pk>/rename/", views.image_class_rename, name="image-class-rename"),
    path("images/classes/<int:pk>/delete/", views.image_class_delete, name="image-class-delete"),
    path("images/labels/", views.image_labels, name="image-labels-import"),
    path("images/labels/apply/", views.image_labels_apply, name="image-labels-apply"),
    path("images/<int:pk>/", views.image_page, name="image-page"),
    path("images/<int:pk>/label/", views.image_label, name="image-label"),
    path("images/<int:pk>/delete/", views.image_delete, name="image-delete"),
]
