"""`python -m monitoring_api` serves the API on MONITORING_API_HOST:MONITORING_API_PORT."""

import uvicorn

from gits_common.settings import configure_logging
from monitoring_api.app import create_app
from monitoring_api.settings import load_settings

configure_logging()
settings = load_settings()
uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)
