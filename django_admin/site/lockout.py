"""The page django-axes shows (AXES_LOCKOUT_CALLABLE) when a username is locked out
from an address after too many failed logins: that it is locked, until when, and how an
administrator unlocks it sooner."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

UNLOCK_COMMAND = "python -m django_admin manage axes_reset_username {username}"


def locked_until(*, username: str, ip_address: str | None, cool_off: timedelta) -> datetime:
    """When the lock of `username` from `ip_address` ends: `cool_off` after the newest
    counted failure (failures while locked are not counted, settings)."""
    newest = AccessAttempt.objects.filter(username=username, ip_address=ip_address).aggregate(
        newest=Max("attempt_time")
    )["newest"]
    return (newest or timezone.now()) + cool_off


def minutes_word(delta: timedelta) -> str:
    """A duration in whole minutes, rounded up ("1 minute", "15 minutes")."""
    minutes = max(1, math.ceil(delta.total_seconds() / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def locked_out(
    request: HttpRequest, original_response: HttpResponse | None, credentials: Any
) -> HttpResponse:
    """The lockout page, with status 429 (Too Many Requests)."""
    username = get_client_username(request, credentials) or ""
    cool_off = get_cool_off(request) or timedelta(0)
    until = locked_until(
        username=username, ip_address=getattr(request, "axes_ip_address", None), cool_off=cool_off
    )
    context = {
        "username": username,
        "failure_limit": get_failure_limit(request, credentials),
        "cool_off": minutes_word(cool_off),
        "until": until,
        "remaining": minutes_word(until - timezone.now()),
        "unlock_command": UNLOCK_COMMAND.format(username=username or "<username>"),
    }
    status = settings.AXES_HTTP_RESPONSE_CODE
    return render(request, "registration/locked.html", context, status=status)
