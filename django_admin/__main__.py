"""`python -m django_admin` migrates the user database, collects static files, creates the
first superuser if there is none, and serves the admin with waitress.
`python -m django_admin manage <command> [args]` runs any manage.py command."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

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
    )


def main(argv: list[str]) -> int:
    """Run a manage.py command, or prepare and serve the admin."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_admin.settings")
    if argv[:1] == ["manage"]:
        from django.core.management import execute_from_command_line

        execute_from_command_line(["python -m django_admin manage", *argv[1:]])
        return 0
    import django
    from django.conf import settings

    from django_admin.bootstrap import password_notice

    django.setup()
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
