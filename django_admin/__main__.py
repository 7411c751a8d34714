"""`python -m django_admin` migrates the user database, collects static files, creates the
first superuser if there is none, and serves the admin with waitress on DJANGO_ADMIN_HOST
and DJANGO_ADMIN_PORT until SIGTERM or Ctrl-C.
`python -m django_admin manage <command> [args]` runs any manage.py command
(`manage help` lists them)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("django_admin")


def prepare() -> str | None:
    """Bring the database and static files up to date and ensure the first superuser;
    the generated password, if one was generated."""
    from django.conf import settings
    from django.core.management import call_command

    from django_admin.bootstrap import ensure_superuser

    Path(settings.DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    return ensure_superuser(
        username=settings.GITS_SUPERUSER_USERNAME, password=settings.GITS_SUPERUSER_PASSWORD
    )


def serve() -> None:
    """Serve the WSGI application until interrupted."""
    from django.conf import settings
    from waitress import serve as waitress_serve

    from django_admin.wsgi import application

    log.info("GITS admin on http://%s:%s/", settings.ADMIN_HOST, settings.ADMIN_PORT)
    waitress_serve(
        application,
        host=settings.ADMIN_HOST,
        port=settings.ADMIN_PORT,
        # Waitress buffers a body before the app sees it: refuse much larger ones early.
        max_request_body_size=(settings.GITS_MAX_UPLOAD_MB + 1) * 1024 * 1024,
        ident="gits-admin",
        **proxy_options(settings.GITS_TRUSTED_PROXY),
    )


def proxy_options(trusted_proxy: str) -> dict[str, Any]:
    """Waitress's options for a reverse proxy at `trusted_proxy` (none when empty): the
    client's address and scheme are taken from that proxy's X-Forwarded-For and
    X-Forwarded-Proto, and those headers are dropped from anyone else's requests."""
    if not trusted_proxy:
        return {}
    return {
        "trusted_proxy": trusted_proxy,
        "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"},
        "clear_untrusted_proxy_headers": True,
    }


def parse_args(argv: list[str]) -> tuple[str | None, list[str]]:
    """The sub-command (None: serve) and the arguments for Django's `manage`; anything
    else exits with status 2 and the usage."""
    parser = argparse.ArgumentParser(
        prog="python -m django_admin",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="{manage}")
    # Django parses the rest itself (so `manage --help` is Django's help).
    commands.add_parser("manage", add_help=False, help="run a manage.py command")
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "manage":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args.command, rest


def main(argv: list[str]) -> int:
    """Run a manage.py command, or prepare and serve the admin."""
    command, manage_args = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_admin.settings")
    if command == "manage":
        from django.core.management import execute_from_command_line

        execute_from_command_line(["python -m django_admin manage", *manage_args])
        return 0
    import django
    from django.conf import settings

    from django_admin.bootstrap import password_notice
    from gits_common.logs import capture_stray_output

    django.setup()
    if settings.LOG_FORMAT == "json":
        capture_stray_output()  # warnings and a crash as JSON lines too
    password = prepare()
    if password is not None:
        url = f"http://{settings.ADMIN_HOST}:{settings.ADMIN_PORT}/"
        username = settings.GITS_SUPERUSER_USERNAME
        # The one print of the service: the user must see this password, once.
        print(password_notice(username=username, password=password, url=url), flush=True)  # noqa: T201
    serve()
    return 0


def run(argv: list[str]) -> int | str:
    """`main`, with a missing secret or a refused password said in one line."""
    from django_admin.bootstrap import WeakPassword
    from gits_common.settings import MissingSetting

    try:
        return main(argv)
    except (MissingSetting, WeakPassword) as exc:
        return f"django_admin cannot start: {exc}"


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
