"""The admin's URLs: the overview and alerts, its pages, login, Django's user admin,
the Dash dashboards, and the original's addresses redirected."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from django_admin.site.views import alerts, overview

admin.site.site_header = "GITS users"
admin.site.site_title = "GITS users"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("alerts/", alerts.alert_list, name="alerts"),
    path(
        "alerts/<str:use_case>/<int:alert_id>/acknowledge/",
        alerts.alert_acknowledge,
        name="alert_acknowledge",
    ),
    path("alerts/<str:use_case>/retrain/", alerts.alert_retrain, name="alert_retrain"),
    # The original's addresses, where its users still go.
    re_path(r"^admin/(?P<rest>.*)$", RedirectView.as_view(url="/users/%(rest)s")),
    re_path(r"^dash_main_dashboard/?$", RedirectView.as_view(url="/dashboards/main/")),
    re_path(r"^dash_monitoring/?$", RedirectView.as_view(url="/dashboards/monitoring/")),
    path("", include("django_admin.site.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(
            template_name="gits/password_change.html", success_url="/"
        ),
        name="password_change",
    ),
    path("users/", admin.site.urls),
    path("dashboards/", include("django_admin.dashboards.urls")),
    path("django_plotly_dash/", include("django_plotly_dash.urls")),
]
