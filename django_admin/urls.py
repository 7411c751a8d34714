"""The admin's URLs: its pages, login, Django's user admin and the Dash dashboards."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

admin.site.site_header = "GITS users"
admin.site.site_title = "GITS users"

urlpatterns = [
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
