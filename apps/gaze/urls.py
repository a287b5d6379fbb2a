from django.urls import path

from apps.gaze import views

urlpatterns = [
    path("sessions/", views.session_list, name="gaze-sessions"),
    path("sessions/<int:pk>/", views.session_page, name="gaze-session"),
    path("recordings/<int:pk>/", views.recording_page, name="gaze-recording"),
]
