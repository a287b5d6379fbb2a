from django.urls import path

from apps.gaze import views

urlpatterns = [
    path("readers/", views.reader_list, name="gaze-readers"),
    path("readers/<int:pk>/", views.reader_page, name="gaze-reader"),
    path("readers/<int:pk>/delete/", views.reader_delete, name="gaze-reader-delete"),
    path("sessions/", views.session_list, name="gaze-sessions"),
    path("sessions/<int:pk>/", views.session_page, name="gaze-session"),
    path("sessions/<int:pk>/edit/", views.session_edit, name="gaze-session-edit"),
    path("sessions/<int:pk>/reparse/", views.session_reparse, name="gaze-session-reparse"),
    path("sessions/<int:pk>/training/", views.session_training, name="gaze-session-training"),
    path("sessions/<int:pk>/delete/", views.session_delete, name="gaze-session-delete"),
    path("recordings/<int:pk>/", views.recording_page, name="gaze-recording"),
    path("recordings/<int:pk>/reparse/", views.recording_reparse, name="gaze-recording-reparse"),
    path("recordings/<int:pk>/delete/", views.recording_delete, name="gaze-recording-delete"),
    path("readings/<int:pk>/training/", views.reading_training, name="gaze-reading-training"),
]
