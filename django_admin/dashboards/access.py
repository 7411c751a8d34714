"""Who may reach the Dash apps, and where they may be shown (PLOTLY_DASH's
"view_decorator", applied to every django-plotly-dash endpoint)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.views.decorators.clickjacking import xframe_options_sameorigin


def framed_login_required(
    view_function: Callable[..., HttpResponse], **kwargs: Any
) -> Callable[..., HttpResponse]:
    """A Dash endpoint that needs a logged-in user (without it django-plotly-dash's
    endpoints are open to anyone) and that the admin's own pages may show in a frame
    ({% plotly_app %}); every other page of the site refuses to be framed at all
    (X_FRAME_OPTIONS = "DENY"), so no other site can frame it to trick a click."""
    return xframe_options_sameorigin(login_required(view_function))
