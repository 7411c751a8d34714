"""Every API counts and times its requests by route template, method and status, and
serves them at an open /metrics; a process without an API serves its own on a port of
its setting, and a port it cannot have never stops it."""

from __future__ import annotations

import logging
import socket
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter

from gits_common.http import create_api, role
from gits_common.metrics import instrument_api, serve_metrics
from gits_common.settings import MissingSetting, Role, port_setting
from tests.metrics_helpers import labels_of, moved, parse, scrape

TOKENS = {r: f"{r.name}-token-for-the-metrics-tests-0123456789" for r in Role}
REQUESTS = "gits_http_requests_total"
DURATIONS = "gits_http_request_duration_seconds_count"


def an_api() -> FastAPI:
    """A GITS API of one read route, instrumented as the services are."""
    router = APIRouter(prefix="/things")

    @router.get("/{name}", openapi_extra=role(Role.read))
    def thing(name: str) -> dict[str, str]:
        return {"name": name}

    app = create_api(
        title="t", summary="s", router=router, tokens=TOKENS, max_body_bytes=10, lifespan=nothing
    )
    instrument_api(app, service="things_api")
    return app


@asynccontextmanager
async def nothing(_app: FastAPI) -> AsyncIterator[None]:
    yield


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_requests_are_counted_and_timed_by_route_template_and_status():
    client = TestClient(an_api())
    auth = {"Authorization": f"Bearer {TOKENS[Role.read]}"}
    before = parse(client.get("/metrics").text)

    for name in ("a", "b", "c"):
        client.get(f"/things/{name}", headers=auth)
    client.get("/things/a")  # no token: 401
    client.post("/things/a", headers=auth, content=b"x" * 100)  # over the body limit
    client.get("/scanning/for/holes")  # no route: one "none" series, whatever the path

    after = parse(client.get("/metrics").text)
    route = {"service": "things_api", "handler": "/things/{name}"}
    assert moved(before, after, REQUESTS, **route, method="GET", status="200") == 3
    assert moved(before, after, REQUESTS, **route, method="GET", status="401") == 1
    assert moved(before, after, REQUESTS, **route, method="POST", status="413") == 1
    assert moved(before, after, DURATIONS, **route, method="GET", status="200") == 3
    assert moved(before, after, REQUESTS, handler="none", status="404") == 1
    handlers = {s["handler"] for s in labels_of(after, REQUESTS)}
    assert handlers == {"/things/{name}", "none"}  # no path, no /metrics itself
    assert "process_cpu_seconds_total" in {name for name, _ in after}


# A scan of any paths (breaker, #16): `/things/<x>/` answered 307 and was its own series,
# a path of 60,000 characters a megabyte of every scrape after it.
PATHS = st.text(
    st.characters(codec="utf-8", exclude_characters="?#%"), min_size=1, max_size=300
).map(lambda text: "/" + text)


@settings(max_examples=60, deadline=None)
@given(paths=st.lists(PATHS | PATHS.map(lambda p: f"/things{p}/"), min_size=1, max_size=5))
def test_no_path_adds_a_series_of_its_own(paths):
    client = TestClient(an_api(), follow_redirects=False)

    for path in paths:
        client.get(quote(path))
    client.get("/things/" + "x" * 60_000 + "/")

    handlers = {s["handler"] for s in labels_of(parse(client.get("/metrics").text), REQUESTS)}
    assert handlers <= {"/things/{name}", "none"}


def test_metrics_are_open_and_not_in_the_openapi_document():
    client = TestClient(an_api())

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_two_apps_in_one_process_each_show_only_their_own_requests():
    first, second = TestClient(an_api()), TestClient(an_api())

    first.get("/nothing")

    assert moved({}, parse(first.get("/metrics").text), REQUESTS, handler="none") == 1
    assert moved({}, parse(second.get("/metrics").text), REQUESTS, handler="none") == 0


def test_a_metrics_server_serves_its_registry_on_its_port():
    registry = CollectorRegistry()
    ticks = Counter("gits_test_ticks_total", "ticks", registry=registry)
    port = free_port()

    assert serve_metrics(port, host="127.0.0.1", registry=registry)
    before = scrape(f"http://127.0.0.1:{port}/metrics")
    ticks.inc(2)
    after = scrape(f"http://127.0.0.1:{port}/metrics")

    assert moved(before, after, "gits_test_ticks_total") == 2


def test_a_scraper_resetting_its_connection_is_logged_not_printed(capfd, caplog):
    # Given a metrics server (in JSON logs, a printed traceback is 26 lines no collector reads)
    port = free_port()
    assert serve_metrics(port, host="127.0.0.1", registry=CollectorRegistry())

    # When a client sends half a request and resets the connection
    with caplog.at_level(logging.DEBUG, logger="gits_common.metrics"):
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.3)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        time.sleep(0.5)

    # Then socketserver printed nothing (its traceback, headed so); what was said went
    # through logging (which may write to stderr too, one record), and it still answers
    assert "Exception occurred during processing of request" not in capfd.readouterr().err
    assert any("metrics request from" in r.getMessage() for r in caplog.records)
    assert scrape(f"http://127.0.0.1:{port}/metrics") is not None


def test_port_zero_serves_nothing_and_a_taken_port_is_only_a_warning(caplog):
    caplog.set_level(logging.WARNING, logger="gits_common.metrics")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        assert not serve_metrics(0, host="127.0.0.1", registry=CollectorRegistry())
        assert not serve_metrics(port, host="127.0.0.1", registry=CollectorRegistry())

    assert f"metrics not served on 127.0.0.1:{port}" in caplog.text


@pytest.mark.parametrize("value", ["70000", "-1", "8100.5", "eighty", "65536"])
def test_a_port_setting_out_of_range_stops_the_process_naming_it(monkeypatch, value):
    monkeypatch.setenv("WORKER_METRICS_PORT", value)

    with pytest.raises(MissingSetting, match=r"WORKER_METRICS_PORT is .*0 \(off\) to 65535"):
        port_setting("WORKER_METRICS_PORT", default=8100)


def test_a_port_setting_takes_0_to_65535(monkeypatch):
    for value in ("0", "65535", " 8100 "):
        monkeypatch.setenv("WORKER_METRICS_PORT", value)
        assert port_setting("WORKER_METRICS_PORT", default=1) == int(value)
