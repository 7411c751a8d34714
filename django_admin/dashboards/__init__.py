"""The dashboards: Dash apps (django-plotly-dash) over the GITS APIs, embedded in the
admin's pages."""
