"""`python -m retraining_api` serves the API on RETRAINING_API_HOST:RETRAINING_API_PORT."""

import uvicorn

from gits_common.settings import configure_logging
from retraining_api.app import create_app
from retraining_api.settings import load_settings

configure_logging()
settings = load_settings()
uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)
