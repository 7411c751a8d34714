"""The dashboards app."""

from __future__ import annotations

import importlib

from django.apps import AppConfig

DASH_APPS = ("main", "monitoring", "realtime")


class DashboardsConfig(AppConfig):
    """Registers the Dash apps once Django is ready."""

    name = "django_admin.dashboards"
    label = "dashboards"
    verbose_name = "Dashboards"

    def ready(self) -> None:
        """Import the Dash app modules: a DjangoDash app exists once its module ran."""
        for module in DASH_APPS:
            importlib.import_module(f"{self.name}.dash_apps.{module}")
