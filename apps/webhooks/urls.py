from django.urls import path

from apps.webhooks import views

# Page names start with "webhooks-": the API's routes are named "webhook-…".
urlpatterns = [
    path("webhooks/", views.webhook_list, name="webhooks"),
    path("webhooks/<int:pk>/", views.webhook_page, name="webhooks-hook"),
    path("webhooks/<int:pk>/toggle/", views.webhook_toggle, name="webhooks-hook-toggle"),
    path("webhooks/<int:pk>/test/", views.webhook_test, name="webhooks-hook-test"),
    path("webhooks/<int:pk>/rotate-secret/", views.webhook_rotate, name="webhooks-hook-rotate"),
    path("webhooks/<int:pk>/delete/", views.webhook_delete, name="webhooks-hook-delete"),
]
