"""`python -m ml_data_api` serves the API on ML_DATA_API_HOST:ML_DATA_API_PORT."""

import uvicorn

from gits_common.settings import configure_logging
from ml_data_api.app import create_app
from ml_data_api.settings import load_settings

configure_logging()
settings = load_settings()
uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)
