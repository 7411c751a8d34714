"""A dashboard's selection lives in its page's URL: the query string a reload or a shared
link carries becomes the Dash app's first selection (django-plotly-dash's initial
arguments), and values no dashboard could have are ignored, never echoed."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client

from django_admin.dashboards.dash_apps import main, monitoring, realtime
from django_admin.dashboards.dash_apps.common import MAX_QUERY_VALUES, initial_arguments


def component(layout: Any, ident: str) -> dict[str, Any] | None:
    """The props of the component of that id in a Dash layout (JSON), if any."""
    if isinstance(layout, dict):
        props = layout.get("props", {})
        if props.get("id") == ident:
            return props
        for part in (props.get("children"), layout.get("children")):
            found = component(part, ident)
            if found is not None:
                return found
    if isinstance(layout, list):
        for part in layout:
            found = component(part, ident)
            if found is not None:
                return found
    return None


def test_a_shared_link_opens_the_dashboard_on_its_selection(browser: Client) -> None:
    # Given a link to the real-time dashboard with two services, a window, an anomaly
    # service and a key no dashboard knows
    query = "service=line_a&service=pump&window=30+minutes&anomaly=pump&colour=red"
    # When it is opened
    response = browser.get(f"/dashboards/realtime/?{query}")
    assert response.status_code == 200
    # Then the app starts with that selection: the window set, the services waiting for
    # their options to come in
    assert response.context["initial"] == {
        "window": {"value": "30 minutes"},
        "selection": {"data": {"service": ["line_a", "pump"], "anomaly": "pump"}},
    }
    frame = re.search(r'<iframe src="([^"]+)"', response.content.decode())
    assert frame is not None
    layout = browser.get(f"{frame.group(1)}_dash-layout").json()
    window, selection = component(layout, "window"), component(layout, "selection")
    assert window is not None and selection is not None
    assert window["value"] == "30 minutes"
    assert selection["data"]["service"] == ["line_a", "pump"]


def test_values_no_dashboard_could_have_are_ignored(browser: Client) -> None:
    response = browser.get("/dashboards/monitoring/?use_case=%3Cscript%3E&window=forever")
    assert response.status_code == 200
    assert response.context["initial"] == {"selection": {"data": {}}}
    assert "<script>alert" not in response.content.decode()
    assert "%3Cscript" not in response.content.decode()


def test_each_dashboard_keeps_its_own_selection() -> None:
    query = {
        "service": [f"s{i}" for i in range(MAX_QUERY_VALUES + 5)],
        "use_case": ["pumps"],
        "window": ["6 hours"],
    }
    # The main dashboard keeps one service, the first
    assert initial_arguments(main.URL_FIELDS, query) == {"selection": {"data": {"service": "s0"}}}
    # The monitoring dashboard its use case and window
    assert initial_arguments(monitoring.URL_FIELDS, query) == {
        "window": {"value": "6 hours"},
        "selection": {"data": {"use_case": "pumps"}},
    }
    # The real-time one a bounded list of services; "6 hours" is none of its windows
    found = initial_arguments(realtime.URL_FIELDS, query)
    assert found["selection"]["data"]["service"] == query["service"][:MAX_QUERY_VALUES]
    assert "window" not in found
