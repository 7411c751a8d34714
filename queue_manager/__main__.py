"""`python -m queue_manager` serves the API on QUEUE_MANAGER_HOST:QUEUE_MANAGER_PORT."""

import uvicorn

from gits_common.settings import configure_logging
from queue_manager.app import create_app
from queue_manager.settings import load_settings

configure_logging()
settings = load_settings()
uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)
