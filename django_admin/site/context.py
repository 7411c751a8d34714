"""What every page's navigation shows besides its links: the number of open alerts."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.http import HttpRequest

from django_admin.apis import client
from gits_common import errors

CACHE_KEY = "gits-open-alerts"
CACHE_SECONDS = 15  # one count serves every page for this long
TIMEOUT_SECONDS = 2.0  # a page never waits longer for its navigation bar
COUNTED = 1000  # more open alerts than this show as "1000+"


def open_alerts(request: HttpRequest) -> dict[str, Any]:
    """`open_alerts`: how many alerts nobody acknowledged ("1000+" past 1000; None when
    monitoring_api is not answering), for logged-in users."""
    if not request.user.is_authenticated:
        return {}
    count = cache.get(CACHE_KEY)
    if count is None:
        count = _count()
        cache.set(CACHE_KEY, count, CACHE_SECONDS)
    return {"open_alerts": None if count == -1 else count}


def forget_open_alerts() -> None:
    """Count again on the next page (after an acknowledgement)."""
    cache.delete(CACHE_KEY)


def _count() -> int | str:
    try:
        found = client("monitoring_api").request(
            "GET", "/monitoring_api/alerts", params={"limit": COUNTED}, timeout=TIMEOUT_SECONDS
        )
    except errors.GitsError:
        return -1  # cached too: a silent monitoring_api is not asked again at every page
    return f"{COUNTED}+" if len(found) >= COUNTED else len(found)
