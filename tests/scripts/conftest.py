from tests.ml_data_api.conftest import app, client, settings  # noqa: F401  (shared fixtures)
