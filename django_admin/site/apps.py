"""The admin site's Django app."""

from __future__ import annotations

from django.apps import AppConfig


class SiteConfig(AppConfig):
    """Pages over what queue_manager, retraining_api and monitoring_api hold."""

    name = "django_admin.site"
    label = "gits_site"
    verbose_name = "GITS admin"
