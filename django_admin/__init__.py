"""django_admin: the GITS admin site (Django) and its Dash dashboards, on port 8000."""
