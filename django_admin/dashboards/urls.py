"""The dashboard pages, under /dashboards/."""

from __future__ import annotations

from django.urls import path

from django_admin.dashboards import views

app_name = "dashboards"
urlpatterns = [
    path("main/", views.dashboard, {"page": "main"}, name="main"),
    path("monitoring/", views.dashboard, {"page": "monitoring"}, name="monitoring"),
    path("realtime/", views.dashboard, {"page": "realtime"}, name="realtime"),
]
