from django.urls import path

from apps.imaging import views

urlpatterns = [
    path("images/", views.image_library, name="image-library"),
    path("images/upload/", views.image_upload, name="image-upload"),
    path("images/<int:pk>/", views.image_page, name="image-page"),
]
