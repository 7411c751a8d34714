"""`python -m queue_manager`: serve the API on QUEUE_MANAGER_HOST and QUEUE_MANAGER_PORT
(from the environment, then .env) until SIGTERM or Ctrl-C. No options."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str]) -> None:
    """Refuse any argument (exit status 2, with the usage), then serve."""
    argparse.ArgumentParser(prog="python -m queue_manager", description=__doc__).parse_args(argv)
    # Imported only now: --help answers at once, and starts and connects to nothing.
    import uvicorn

    from gits_common.settings import configure_logging
    from queue_manager.app import create_app
    from queue_manager.settings import load_settings

    configure_logging("queue_manager")
    settings = load_settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)


if __name__ == "__main__":
    main(sys.argv[1:])
