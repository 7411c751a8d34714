from tests.ml_data_api.conftest import app, settings  # noqa: F401  (shared fixtures)
