"""The Dash apps; importing a module registers its app with django-plotly-dash."""
