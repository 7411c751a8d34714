"""`python -m monitoring_api`: serve the API on MONITORING_API_HOST and MONITORING_API_PORT
(from the environment, then .env) until SIGTERM or Ctrl-C. No options."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str]) -> None:
    """Refuse any argument (exit status 2, with the usage), then serve."""
    argparse.ArgumentParser(prog="python -m monitoring_api", description=__doc__).parse_args(argv)
    # Imported only now: --help answers at once, and starts and connects to nothing.
    import uvicorn

    from gits_common.settings import configure_logging
    from monitoring_api.app import create_app
    from monitoring_api.settings import load_settings

    configure_logging("monitoring_api")
    settings = load_settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)


if __name__ == "__main__":
    main(sys.argv[1:])
