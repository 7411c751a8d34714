"""The one page open without login: whether the admin process answers, for health checks."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


@login_not_required
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """ "ok" while the process serves requests; it shows nothing of the platform."""
    return JsonResponse({"status": "ok"})
