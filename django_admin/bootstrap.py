"""The first superuser: from the environment, or with a generated password shown once.
There is never a default account such as admin/admin."""

from __future__ import annotations

import logging
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

log = logging.getLogger(__name__)

GENERATED_PASSWORD_BYTES = 18


class WeakPassword(RuntimeError):
    """DJANGO_SUPERUSER_PASSWORD fails Django's password validators."""


def ensure_superuser(*, username: str, password: str) -> str | None:
    """Create the first superuser when none exists. Returns the password when it was
    generated here (the caller shows it once); None when nothing was generated."""
    users = get_user_model()
    if users.objects.filter(is_superuser=True).exists():
        log.info("a superuser exists; DJANGO_SUPERUSER_* are used only for the first one")
        return None
    generated = None
    if not password:
        password = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
        generated = password
    try:
        validate_password(password, users(username=username))
    except ValidationError as exc:
        raise WeakPassword(
            "DJANGO_SUPERUSER_PASSWORD is refused: " + " ".join(exc.messages)
        ) from exc
    users.objects.create_superuser(username=username, email="", password=password)
    log.info("created the first superuser %r", username)
    return generated


def password_notice(*, username: str, password: str, url: str) -> str:
    """The framed notice of a generated password, printed once at start."""
    lines = [
        "GITS admin: the first superuser was created.",
        f"  URL:      {url}",
        f"  user:     {username}",
        f"  password: {password}",
        "Shown only now and stored nowhere but as a hash. Change it after logging in",
        "(Password in the top bar), or: python -m django_admin manage changepassword " + username,
    ]
    width = max(len(line) for line in lines)
    border = "+" + "-" * (width + 2) + "+"
    return "\n".join([border, *(f"| {line:<{width}} |" for line in lines), border])
