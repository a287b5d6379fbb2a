from django.urls import path

from apps.evaluation import views, views_regions

urlpatterns = [
    path("evaluations/", views.evaluation_list, name="evaluations"),
    path("evaluations/compare/", views.evaluation_compare, name="evaluations-compare"),
    path("evaluations/<int:pk>/", views.evaluation_page, name="evaluation-page"),
    path("evaluations/<int:pk>/table.csv", views.evaluation_csv, name="evaluation-csv"),
    path("evaluations/<int:pk>/gallery/", views.evaluation_gallery, name="evaluation-gallery"),
    path("evaluations/<int:pk>/readers/", views.evaluation_readers, name="evaluation-readers"),
    path(
        "evaluations/<int:pk>/regions/",
        views_regions.evaluation_regions_page,
        name="evaluation-regions-page",
    ),
    path("evaluations/images/<int:pk>/panel.png", views.evaluation_panel, name="evaluation-panel"),
]
